"""A sandbox without a Groq key answers what expects an answer with the missing-key note, and handles what is never
answered (a reaction, a deletion) as always: a reaction must never get a reply."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

import workers.pipelines.entry as entry
from shared.config import Settings
from shared.jobs import InboundJob
from tests.queued_jobs import inbound_job


def job(message: dict[str, Any]) -> InboundJob:
    return inbound_job(message)


@pytest.mark.parametrize(
    ("message", "answered"),
    [
        ({"type": "text", "text": {"body": "hello"}}, True),
        ({"type": "reaction", "reaction": {"message_id": "wamid.OUT", "emoji": "👍"}}, False),
        ({"type": "revoke", "revoke": {"original_message_id": "wamid.X"}}, False),
    ],
)
def test_only_what_expects_an_answer_gets_the_missing_key_note(
    monkeypatch: pytest.MonkeyPatch, message: dict[str, Any], answered: bool
) -> None:
    said: list[str] = []
    ran: list[str] = []
    monkeypatch.setattr(entry, "send_text_reply", lambda ctx, job, text, part: said.append(part))
    monkeypatch.setattr(entry, "acknowledge", lambda ctx, job: None)
    monkeypatch.setattr(entry, "release_user_count", lambda ctx, job: None)
    settings = Settings(_env_file=None, sandbox=True, groq_api_key="")  # type: ignore[call-arg]
    ctx = SimpleNamespace(settings=settings)
    entry.unless_groq_key_missing(lambda c, j: ran.append(j.message_type))(ctx, job(message))  # type: ignore[arg-type]
    assert said == (["groq_key_missing"] if answered else [])
    assert ran == ([] if answered else [message["type"]])
