"""`loopera trace` of a ledger written under another message key (a sandbox run generates its own APP_SECRET): it
must not print ids hashed with our key, which would match no log line."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

import shared.logging
from loopera.trace import FOREIGN_KEY, render
from shared.jobs import InboundJob
from shared.ledger import hashing_key, message_ref
from shared.logging import correlation_id, set_correlation_key

THEIRS, OURS = hashing_key("", "the-sandbox-runs-secret"), hashing_key("", "the-env-files-secret")


@pytest.fixture(autouse=True)
def _our_correlation_key() -> Iterator[None]:
    """The process's correlation key is global: set ours, and give the next tests theirs back."""
    before = shared.logging._correlation_key
    set_correlation_key(OURS)
    yield
    set_correlation_key(before)


def ledger(key: bytes) -> tuple[str, dict[str, str]]:
    job = InboundJob(
        job_id="task-1",
        message_id="wamid.IN1",
        message_type="text",
        conversation="u:abc",
        phone_number_id="1",
        received_at=time.time(),
        message={"type": "text", "text": {"body": "hi"}},
        to="15550001111",
    )
    fields = {"job": job.model_dump_json(), "received_ms": "1", "send:text:0": "done", "send:text:0:meta": "wamid.OUT"}
    return message_ref(job.message_id, key), fields


def test_a_ledger_of_another_key_prints_no_ids_hashed_with_ours() -> None:
    ref, fields = ledger(THEIRS)
    text = "\n".join(render(ref, fields, OURS))
    assert FOREIGN_KEY in text and "Meta id ref unknown (another key)" in text
    assert correlation_id("wamid.IN1") not in text


def test_a_ledger_of_our_key_prints_the_correlation_id_of_its_log_lines() -> None:
    ref, fields = ledger(OURS)
    text = "\n".join(render(ref, fields, OURS))
    assert f"correlation_id {correlation_id('wamid.IN1')}" in text and FOREIGN_KEY not in text
    assert f"Meta id ref {message_ref('wamid.OUT', OURS)[:12]}" in text
