"""How a kept answer is introduced when it is finally delivered, and what of the question is kept for that."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from shared.config import Settings
from shared.jobs import InboundJob
from tests.queued_jobs import inbound_job
from workers.delivery.undelivered import KeptAnswer
from workers.pipelines.window import asked_in, kept_answer_text


def ctx(intro: str = "", transcript: Any = None) -> Any:
    settings = Settings(_env_file=None, kept_answer_intro=intro)  # type: ignore[call-arg]
    ledger = SimpleNamespace(stored=lambda name: transcript if name == "transcript" else None)
    return SimpleNamespace(settings=settings, ledgers=SimpleNamespace(of=lambda job: ledger))


def job(message: dict[str, Any]) -> InboundJob:
    return inbound_job(message)


def test_the_intro_names_the_question_in_the_conversations_language() -> None:
    answer = KeptAnswer("Lima.", "¿Capital de Perú?")
    assert kept_answer_text(ctx(), answer, "es") == (
        "Antes preguntaste «¿Capital de Perú?». Esta es la respuesta que no pude entregarte entonces:\n\nLima."
    )
    assert kept_answer_text(ctx(), answer, "xx").startswith("Earlier you asked “¿Capital de Perú?”.")


def test_an_answer_kept_without_its_question_gets_a_plain_intro() -> None:
    assert kept_answer_text(ctx(), KeptAnswer("Lima."), "en") == (
        "Here is an answer I could not deliver earlier:\n\nLima."
    )


def test_the_operator_sentence_replaces_the_built_in_one() -> None:
    text = kept_answer_text(ctx("Re: {question} (sorry for the delay)"), KeptAnswer("Lima.", "Peru?"), "es")
    assert text == "Re: Peru? (sorry for the delay)\n\nLima."


def test_the_question_is_the_start_of_the_text_caption_or_transcript() -> None:
    long = "word " * 60
    asked = asked_in(ctx(), job({"type": "text", "text": {"body": long}}))
    assert asked.endswith("…") and len(asked) <= 120 and asked.startswith("word word")
    photo = {"type": "image", "image": {"id": "1", "caption": "What  is\nthis?"}}
    assert asked_in(ctx(), job(photo)) == "What is this?"
    heard = json.dumps({"text": "Where is my order?", "language": "en", "notice": ""})
    assert asked_in(ctx(transcript=heard), job({"type": "audio", "audio": {"id": "2"}})) == "Where is my order?"
    assert asked_in(ctx(), job({"type": "sticker", "sticker": {"id": "3"}})) == ""
