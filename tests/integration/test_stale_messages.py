"""Outage backlog: messages older than STALE_MESSAGE_SECONDS (default 3600) get one delay notice, no AI answer."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from tests.fakes.graph_fake import GraphFake
from tests.fakes.groq_fake import GroqFake
from tests.fakes.server import wait_for
from tests.processes import ServiceProcess
from tests.webhooks import fixture_file, fresh_ids, message_body, text_message
from workers.text.phrases import PHRASES

pytestmark = pytest.mark.integration

HOURS = 3600


def aged(message: dict[str, Any], seconds: float) -> dict[str, Any]:
    return {**message, "timestamp": str(int(time.time() - seconds))}


def quoting(graph_fake: GraphFake, message_id: str) -> list[str]:
    return [
        m["text"]["body"]
        for m in graph_fake.sent_messages()
        if (m.get("context") or {}).get("message_id") == message_id
    ]


def test_backlog_gets_one_delay_notice_and_no_ai_answer(
    webhooks, worker_service: ServiceProcess, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    user = f"1555{uuid.uuid4().int % 10**8:08d}"
    first = aged(text_message("Can you help me with my order?", sender=user), 2 * HOURS)
    second = aged(text_message("Hello?", sender=user), 90 * 60)
    reaction = fresh_ids(fixture_file("message")["reaction"], sender=user)
    reaction_message = reaction["entry"][0]["changes"][0]["value"]["messages"][0]
    reaction_message["timestamp"] = str(int(time.time() - 3 * HOURS))
    webhooks.post(reaction)
    webhooks.post(message_body([first, second], sender=user))
    fresh = text_message("I am back", sender=user)
    webhooks.post(message_body([fresh], sender=user))

    wait_for(lambda: quoting(graph_fake, fresh["id"]), what="the answer to the fresh message")
    assert quoting(graph_fake, first["id"]) == [PHRASES["stale_notice"]["en"]]
    assert quoting(graph_fake, second["id"]) == []  # one notice per backlog, not one per message
    assert quoting(graph_fake, reaction_message["id"]) == []
    assert graph_fake.texts_to(user) == [PHRASES["stale_notice"]["en"], "You said: I am back"]
    # Only the fresh message reached the model; the late ones are not in its memory either.
    [call] = groq_fake.calls_to("chat/completions")
    assert [m["content"] for m in call.body["messages"][1:]] == ["I am back"]


def test_delay_notice_is_in_the_users_language(
    webhooks, worker_service: ServiceProcess, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    user = f"1555{uuid.uuid4().int % 10**8:08d}"
    late = aged(text_message("Hola, ¿me puedes ayudar con una pregunta?", sender=user), 5 * HOURS)
    webhooks.post(message_body([late], sender=user))
    assert wait_for(lambda: quoting(graph_fake, late["id"]), what="the notice") == [PHRASES["stale_notice"]["es"]]
    assert groq_fake.calls_to("chat/completions") == []


def test_a_message_just_inside_the_limit_is_answered(
    webhooks, worker_service: ServiceProcess, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    user = f"1555{uuid.uuid4().int % 10**8:08d}"
    recent = aged(text_message("Still there?", sender=user), 50 * 60)
    webhooks.post(message_body([recent], sender=user))
    assert wait_for(lambda: quoting(graph_fake, recent["id"]), what="the answer") == ["You said: Still there?"]
