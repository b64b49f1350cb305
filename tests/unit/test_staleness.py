"""The late-message policy with a fake Graph on a real redis-server: one notice per backlog, silence for silent types,
a sticky verdict."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis

from shared.config import Settings
from shared.jobs import InboundJob
from tests.processes import RedisServer
from workers.delivery.ledger_book import LedgerBook
from workers.pipelines import staleness
from workers.text.phrases import PHRASES

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")


@dataclass
class FakeGraph:
    sent: list[tuple[str | None, str, str | None]] = field(default_factory=list)

    def send_text(
        self, to: str | None, recipient: str | None, text: str, reply_to: str | None = None, group: bool = False
    ) -> str:
        self.sent.append((to, text, reply_to))
        return f"wamid.out.{len(self.sent)}"


class FakeMemory:
    def load(self, conversation: str) -> list[Any]:
        return []


@dataclass
class FakeContext:
    settings: Settings
    redis: redis.Redis
    graph: FakeGraph
    memory: FakeMemory
    ledgers: LedgerBook


@pytest.fixture
def ctx(server: RedisServer) -> Iterator[FakeContext]:
    client = redis.Redis.from_url(server.url)
    client.flushdb()
    yield FakeContext(
        Settings(stale_message_seconds=3600), client, FakeGraph(), FakeMemory(), LedgerBook(client, 60, 20, 3600)
    )
    client.close()


def job(message_type: str = "text", age: float = 0.0, conversation: str = "15550001111", **body: Any) -> InboundJob:
    message_id = f"wamid.{uuid.uuid4().hex}"
    message = {"id": message_id, "type": message_type, "timestamp": str(int(time.time() - age)), **body}
    if message_type == "text" and "text" not in body:
        message["text"] = {"body": "Where is my parcel?"}
    return InboundJob(
        job_id=uuid.uuid4().hex,
        message_id=message_id,
        message_type=message_type,
        conversation=conversation,
        phone_number_id="1",
        received_at=time.time(),
        message=message,
        to=conversation,
    )


def test_fresh_message_goes_to_its_pipeline(ctx: FakeContext) -> None:
    assert not staleness.handled_as_stale(ctx, job(age=60))  # type: ignore[arg-type]
    assert ctx.graph.sent == []


def test_one_notice_per_conversation_per_backlog(ctx: FakeContext) -> None:
    first, second = job(age=7200), job(age=5000)
    assert staleness.handled_as_stale(ctx, first)  # type: ignore[arg-type]
    assert staleness.handled_as_stale(ctx, second)  # type: ignore[arg-type]
    assert ctx.graph.sent == [("15550001111", PHRASES["stale_notice"]["en"], first.message_id)]
    # A redelivered copy of the first message does not send the notice twice (send-once marker).
    assert staleness.handled_as_stale(ctx, first)  # type: ignore[arg-type]
    assert len(ctx.graph.sent) == 1
    # Another conversation gets its own notice.
    other = job(age=7200, conversation="15550002222")
    assert staleness.handled_as_stale(ctx, other)  # type: ignore[arg-type]
    assert len(ctx.graph.sent) == 2


def test_silent_types_never_trigger_the_notice(ctx: FakeContext) -> None:
    reaction = job("reaction", age=7200, reaction={"message_id": "wamid.x", "emoji": "👍"})
    assert staleness.handled_as_stale(ctx, reaction)  # type: ignore[arg-type]
    assert ctx.graph.sent == []
    # ...and do not use up the conversation's one notice.
    assert staleness.handled_as_stale(ctx, job(age=7200))  # type: ignore[arg-type]
    assert len(ctx.graph.sent) == 1


def test_the_verdict_is_taken_once_per_message(ctx: FakeContext, monkeypatch: pytest.MonkeyPatch) -> None:
    retried, unseen = job(age=3500), job(age=3500)
    assert not staleness.handled_as_stale(ctx, retried)  # type: ignore[arg-type]
    later = time.time() + 600
    monkeypatch.setattr(time, "time", lambda: later)  # the retry runs after the limit has passed
    assert not staleness.handled_as_stale(ctx, retried)  # type: ignore[arg-type]
    # A message judged for the first time now is late.
    assert staleness.handled_as_stale(ctx, unseen)  # type: ignore[arg-type]


def test_missing_or_odd_timestamps_count_as_fresh(ctx: FakeContext) -> None:
    odd = job()
    odd.message.pop("timestamp")
    assert not staleness.handled_as_stale(ctx, odd)  # type: ignore[arg-type]
    assert staleness.message_age({"timestamp": "not-a-number"}, time.time()) is None
