"""The message ledger against a real redis-server: stages kept once, parts sent once, every send gate, the claim."""

from __future__ import annotations

import shutil
import time
import uuid

import pytest
import redis

from shared import mailbox
from shared.config import Settings
from shared.jobs import InboundJob
from shared.ledger import conversation_state_key, ledger_key
from shared.redis_scripts import ScriptResult
from workers.delivery.ledger import MessageLedger, SendInFlightError, SendResult
from workers.delivery.ledger_book import Claimed, LedgerBook
from workers.delivery.memory import ConversationMemory, entry

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")

HOUR = 3600.0


def make_job(age: float = 0.0, conversation: str = "15550001111") -> InboundJob:
    sent_at = time.time() - age
    return InboundJob(
        job_id=str(uuid.uuid4()),
        message_id=f"wamid.{uuid.uuid4().hex}",
        message_type="text",
        conversation=conversation,
        phone_number_id="1",
        received_at=sent_at,
        message={"type": "text", "timestamp": str(int(sent_at)), "text": {"body": "hi"}},
        to=conversation,
    )


def queued(client: redis.Redis, job: InboundJob, ref: str | None = None) -> str:
    """What the webhook's INGEST leaves: the ledger, and the job at the head of its conversation's mailbox."""
    ref = ref or uuid.uuid4().hex
    client.hset(
        ledger_key(ref),
        mapping={"job": job.model_dump_json(), "conv": job.conversation, "task": job.job_id, "received_ms": 1},
    )
    client.rpush(mailbox.inbox_key(job.conversation), f"{job.job_id} text {{}}")
    return ref


def book(client: redis.Redis) -> LedgerBook:
    return LedgerBook(client, lease_seconds=60, memory_max=20, memory_ttl_seconds=3600)


def claimed(client: redis.Redis, job: InboundJob, token: str = "copy-a") -> MessageLedger:
    result = book(client).claim(queued(client, job), token)
    assert isinstance(result, Claimed) and result.job == job
    return result.ledger


class Graph:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, body: str) -> str:
        self.sent.append(body)
        return f"wamid.out.{len(self.sent)}"


def reload(client: redis.Redis, ledger: MessageLedger, token: str = "") -> MessageLedger:
    """The ledger as a later run sees it (after a crash or a retry)."""
    fields = {k.decode(): v.decode() for k, v in client.hgetall(ledger.key).items()}
    return MessageLedger(client, ledger.ref, ledger.job, token or ledger.token, fields)


def test_a_stage_is_computed_once_and_a_retry_gets_the_stored_value(client: redis.Redis) -> None:
    ledger, graph = claimed(client, make_job()), Graph()
    assert ledger.stage("chat", lambda: "first answer") == "first answer"
    assert ledger.send_once("text:0", lambda: graph.send("first answer")) is SendResult.SENT
    ledger.flush()
    again = reload(client, ledger)
    assert again.stage("chat", lambda: "a different answer") == "first answer"
    assert again.stage("verdict", lambda: {"stale": False, "age": 3}) == {"stale": False, "age": 3}
    assert again.send_once("text:0", lambda: graph.send("first answer")) is SendResult.ALREADY_SENT
    assert graph.sent == ["first answer"]
    assert client.hget(ledger.key, "send:text:0:meta") == b"wamid.out.1"


def test_a_failed_send_gives_the_part_back_and_the_retry_sends_it(client: redis.Redis) -> None:
    ledger, graph = claimed(client, make_job()), Graph()

    def refused() -> str:
        raise ConnectionError("graph timed out")

    with pytest.raises(ConnectionError):
        ledger.send_once("text:0", refused)
    assert reload(client, ledger).send_once("text:0", lambda: graph.send("x")) is SendResult.SENT
    assert graph.sent == ["x"]


def test_a_part_in_flight_elsewhere_defers_and_a_copy_that_lost_its_claim_sends_nothing(client: redis.Redis) -> None:
    ledger, graph = claimed(client, make_job()), Graph()
    until = int(time.time() * 1000) + 30_000
    client.hset(ledger.key, mapping={"send:text:0": "sending", "send:text:0:until": until})
    with pytest.raises(SendInFlightError) as waiting:
        ledger.send_once("text:0", lambda: graph.send("x"))
    assert 25 <= (waiting.value.retry_after or 0) <= 30
    client.hset(ledger.key, "claim", "copy-b")  # the reaper handed the job to another copy
    with pytest.raises(SendInFlightError):
        ledger.send_once("text:1", lambda: graph.send("y"))
    assert graph.sent == []


@pytest.mark.parametrize("flag", ["cancelled", "superseded", "merged"])
def test_a_message_flag_set_while_the_answer_is_computed_stops_every_part(client: redis.Redis, flag: str) -> None:
    ledger, graph = claimed(client, make_job()), Graph()
    answer = ledger.stage("chat", lambda: client.hset(ledger.key, f"flag:{flag}", "1") and "too late")
    assert ledger.send_once("text:0", lambda: graph.send(answer)) is SendResult.BLOCKED
    assert ledger.blocked_by == flag and graph.sent == []
    assert client.hget(ledger.key, "send:text:0") == b"blocked"
    assert client.hget(ledger.key, "send:text:0:gate") == flag.encode()


@pytest.mark.parametrize(
    ("state", "gate"),
    [({"paused_until": "9" * 13}, "paused"), ({"opted_out": "1"}, "opted_out")],
)
def test_the_conversation_state_gates(client: redis.Redis, state: dict[str, str], gate: str) -> None:
    job = make_job()
    ledger, graph = claimed(client, job), Graph()
    client.hset(conversation_state_key(job.conversation), mapping=state)
    assert ledger.send_once("text:0", lambda: graph.send("x")) is SendResult.BLOCKED
    assert ledger.blocked_by == gate and graph.sent == []


def test_a_pause_that_ended_no_longer_gates(client: redis.Redis) -> None:
    job = make_job()
    ledger, graph = claimed(client, job), Graph()
    client.hset(conversation_state_key(job.conversation), "paused_until", int(time.time() * 1000) - 1)
    assert ledger.send_once("text:0", lambda: graph.send("x")) is SendResult.SENT


def test_the_customer_service_window(client: redis.Redis) -> None:
    old = make_job(age=25 * HOUR)
    ledger, graph = claimed(client, old), Graph()
    assert ledger.send_once("text:0", lambda: graph.send("x")) is SendResult.BLOCKED
    assert ledger.blocked_by == "outside_window"
    # A later message of the same user reopened the window: the conversation's `window_until` says so.
    other = make_job(age=25 * HOUR, conversation="15550002222")
    later, graph = claimed(client, other), Graph()
    reopened = int((time.time() + HOUR) * 1000)
    client.hset(conversation_state_key(other.conversation), "window_until", reopened)
    assert later.send_once("text:0", lambda: graph.send("x")) is SendResult.SENT


def test_the_turn_is_remembered_once_with_the_pending_writes(client: redis.Redis) -> None:
    job, graph = make_job(), Graph()
    ledger, memory = claimed(client, job), ConversationMemory(client)
    ledger.send_once("text:0", lambda: graph.send("hello"))
    turn = (entry("user", "hi"), entry("assistant", "hello"))
    assert ledger.remember(memory, *turn)
    assert client.hget(ledger.key, "send:text:0") == b"done"  # travelled with the memory append
    assert not reload(client, ledger).remember(memory, *turn)
    assert [e["content"] for e in memory.load(job.conversation)] == ["hi", "hello"]
    assert client.hexists(ledger.key, "memory")


def test_the_claim_loads_ledger_and_memory_and_refuses_stale_or_parallel_copies(client: redis.Redis) -> None:
    job, ledgers = make_job(), book(client)
    ConversationMemory(client).append(job.conversation, entry("user", "earlier"))
    ref = queued(client, job)
    first = ledgers.claim(ref, "copy-a")
    assert isinstance(first, Claimed) and first.ledger.history is not None
    assert [e["content"] for e in first.ledger.history] == ["earlier"]
    assert ledgers.claim(ref, "copy-b") is ScriptResult.HELD_ELSEWHERE
    assert isinstance(ledgers.claim(ref, "copy-a"), Claimed)  # the same copy again (a redelivery to itself)
    client.lpop(mailbox.inbox_key(job.conversation))
    assert ledgers.claim(ref, "copy-a") is ScriptResult.NOT_HEAD
    assert ledgers.claim("no-such-ref", "copy-a") is ScriptResult.NO_LEDGER
    assert client.hget(ledger_key(ref), "runs") == b"2"


def test_a_ledger_whose_job_does_not_validate_is_claimed_for_release(client: redis.Redis) -> None:
    job = make_job()
    ref = queued(client, job)
    client.hset(ledger_key(ref), "job", '{"job_id": 1}')
    result = book(client).claim(ref, "copy-a")
    assert isinstance(result, Claimed) and result.job is None and result.errors > 0
    assert (result.conversation, result.task_id) == (job.conversation, job.job_id)


def test_the_claim_counts_the_message_in_its_users_window_and_a_release_takes_it_back(client: redis.Redis) -> None:
    """With the per-user limit on, the claim decides the message's place in its user's window (no round trip of
    its own); a message that turns out not to go to a model is taken back out."""
    from workers.clients.user_rate_limit import UserRateLimit, window_keys

    ledgers = LedgerBook(client, 60, 20, 3600, user_messages_per_window=1, user_window_seconds=60)
    first, second = make_job(), make_job()
    claimed_first = ledgers.claim(queued(client, first), "copy-a")
    assert isinstance(claimed_first, Claimed)
    assert claimed_first.ledger.stored("user_limit") == "answer"
    assert claimed_first.ledger.fields["user_window"] == "counted"
    log, notice = window_keys(first.conversation)
    assert client.zcard(log) == 1
    # The same claim again (a redelivery to the same copy) does not count twice.
    assert isinstance(ledgers.claim(claimed_first.ref, "copy-a"), Claimed)
    assert client.zcard(log) == 1
    client.lpop(mailbox.inbox_key(first.conversation))
    claimed_second = ledgers.claim(queued(client, second), "copy-b")
    assert isinstance(claimed_second, Claimed)
    assert claimed_second.ledger.stored("user_limit") == "slow_down"  # over the limit of 1: carries the notice
    # The second message was, say, a reaction: taken back, it frees the notice for the next model message.
    settings = Settings(_env_file=None, user_messages_per_window=1)  # type: ignore[call-arg]
    UserRateLimit(client, settings).release(second.conversation, claimed_second.ledger.key)
    assert client.zcard(log) == 1 and not client.exists(notice)
    # A message judged by the Python script path gets the same member: it is recognised as already counted.
    assert UserRateLimit(client, settings).admit(first.conversation, claimed_first.ledger.key).value == "answer"


def test_a_new_run_clears_how_the_previous_one_ended(client: redis.Redis) -> None:
    """`loopera trace` must not read "deferred" on a message that was answered by the run after the deferral."""
    job = make_job()
    ref = queued(client, job)
    client.hset(ledger_key(ref), "outcome", "deferred")
    claim = book(client).claim(ref, "copy-a")
    assert isinstance(claim, Claimed) and "outcome" not in claim.ledger.fields
    assert not client.hexists(ledger_key(ref), "outcome")
    client.hset(ledger_key(ref), "outcome", "deferred")
    client.lpop(mailbox.inbox_key(job.conversation))
    assert book(client).claim(ref, "copy-b") is ScriptResult.NOT_HEAD  # a stale copy changes nothing
    assert client.hget(ledger_key(ref), "outcome") == b"deferred"
