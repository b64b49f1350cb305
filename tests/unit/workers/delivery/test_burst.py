"""Burst membership (a pure function) and the close script against a real redis-server."""

from __future__ import annotations

import shutil
import time
import uuid

import orjson
import pytest
import redis

from shared import mailbox
from shared.celery_protocol import build_task_message, new_task_id
from shared.jobs import InboundJob
from shared.ledger import ledger_key
from shared.redis_scripts import ScriptResult
from workers.delivery.burst import Arrival, BurstCloser, Closed, Open, arrivals, burst_of, task_and_ref
from workers.delivery.ledger_book import Claimed, LedgerBook

CONVERSATION = "15550002222"
WINDOW, CAP = 2500, 8000


def make_job(text: str = "hi", conversation: str = CONVERSATION) -> InboundJob:
    task_id = new_task_id()
    return InboundJob(
        job_id=task_id,
        message_id=f"wamid.{uuid.uuid4().hex}",
        message_type="text",
        conversation=conversation,
        phone_number_id="1",
        received_at=time.time(),
        message={"type": "text", "text": {"body": text}},
        to=conversation,
    )


def arrival(received_ms: int, joins: bool = True) -> Arrival:
    return Arrival(uuid.uuid4().hex, new_task_id(), received_ms, make_job("hi" if joins else "/stop"))


def texts_only(job: InboundJob) -> bool:
    return not job.message["text"]["body"].startswith("/")


def test_a_message_alone_waits_one_window_then_closes_alone() -> None:
    head = arrival(10_000)
    assert burst_of(head, [], WINDOW, CAP, 10_100, texts_only) == Open(2400)
    assert burst_of(head, [], WINDOW, CAP, 12_500, texts_only) == Closed((head,))


def test_each_message_within_the_window_extends_the_burst_up_to_the_cap() -> None:
    head, second, third = arrival(0), arrival(2000), arrival(4400)
    assert burst_of(head, [second, third], WINDOW, CAP, 5000, texts_only) == Open(1900)
    assert burst_of(head, [second, third], WINDOW, CAP, 6900, texts_only) == Closed((head, second, third))
    # The cap counts from the first message: the burst closes at 8 s even though messages keep coming.
    chain = [arrival(ms) for ms in (2000, 4000, 6000, 7900)]
    assert burst_of(head, chain, WINDOW, CAP, 7950, texts_only) == Open(50)
    assert burst_of(head, chain, WINDOW, CAP, 8000, texts_only) == Closed((head, *chain))
    late = arrival(8100)
    assert burst_of(head, [*chain, late], WINDOW, CAP, 8200, texts_only) == Closed((head, *chain))


def test_a_gap_or_a_message_that_cannot_join_closes_the_burst_at_once() -> None:
    head = arrival(0)
    after_gap = arrival(2600)
    assert burst_of(head, [after_gap], WINDOW, CAP, 2700, texts_only) == Closed((head,))
    second, command = arrival(1000), arrival(1500, joins=False)
    assert burst_of(head, [second, command, arrival(1600)], WINDOW, CAP, 1700, texts_only) == Closed((head, second))


def test_a_head_that_cannot_join_or_a_window_of_zero_never_waits() -> None:
    command = arrival(0, joins=False)
    assert burst_of(command, [arrival(100)], WINDOW, CAP, 200, texts_only) == Closed((command,))
    head = arrival(0)
    assert burst_of(head, [arrival(100)], 0, CAP, 200, texts_only) == Closed((head,))


def test_a_mailbox_entry_names_its_task_and_ref() -> None:
    envelope = build_task_message("loopera.text.handle_message", "task-1", "text", ["ref-1"], "<text x>")
    assert task_and_ref(b"task-1 text " + envelope) == ("task-1", "ref-1")
    assert task_and_ref(b"task-1 text {}") is None  # an entry of another shape never joins


needs_redis = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")


def ingest(client: redis.Redis, job: InboundJob, received_ms: int) -> str:
    """What the webhook's INGEST leaves: the ledger and the mailbox entry (with a real Celery envelope)."""
    ref = uuid.uuid4().hex
    client.hset(
        ledger_key(ref),
        mapping={
            "job": job.model_dump_json(),
            "conv": job.conversation,
            "task": job.job_id,
            "received_ms": received_ms,
        },
    )
    envelope = build_task_message("loopera.text.handle_message", job.job_id, "text", [ref], "<text x>")
    client.rpush(mailbox.inbox_key(job.conversation), f"{job.job_id} text ".encode() + envelope)
    return ref


@needs_redis
def test_closing_merges_the_earlier_members_into_the_last_and_hands_it_on(client: redis.Redis) -> None:
    jobs = [make_job(text) for text in ("hi", "I have a question", "about my order", "/stop")]
    refs = [ingest(client, job, 1000 * i) for i, job in enumerate(jobs)]
    claim = LedgerBook(client, 60, 20, 3600, burst_peek=20).claim(refs[0], "copy-a")
    assert isinstance(claim, Claimed) and len(claim.behind) == 3
    behind = arrivals(client, claim.behind)
    assert [a.ref for a in behind] == refs[1:] and [a.received_ms for a in behind] == [1000, 2000, 3000]
    head = Arrival(refs[0], jobs[0].job_id, 0, jobs[0])
    verdict = burst_of(head, behind, WINDOW, CAP, 10_000, texts_only)
    assert isinstance(verdict, Closed) and [m.ref for m in verdict.members] == refs[:3]

    closer = BurstCloser(client, 60)
    assert closer.close(CONVERSATION, "copy-b", verdict.members) is ScriptResult.HELD_ELSEWHERE
    assert client.llen(mailbox.inbox_key(CONVERSATION)) == 4  # nothing changed
    assert closer.close(CONVERSATION, "copy-a", verdict.members) is ScriptResult.MERGED

    for ref in refs[:2]:
        assert client.hget(ledger_key(ref), "flag:merged") == refs[2].encode()
    assert orjson.loads(client.hget(ledger_key(refs[2]), "burst") or b"") == refs[:3]
    inbox = client.lrange(mailbox.inbox_key(CONVERSATION), 0, -1)
    assert [task_and_ref(entry) for entry in inbox] == [(jobs[2].job_id, refs[2]), (jobs[3].job_id, refs[3])]
    assert task_and_ref(b"x text " + (client.rpop("text") or b"")) == ("x", refs[2])  # the last, to its queue
    # The first message's redelivered copy is no longer the head; the last's claim sees no one behind to merge.
    assert LedgerBook(client, 60, 20, 3600, burst_peek=20).claim(refs[0], "copy-c") is ScriptResult.NOT_HEAD
    last = LedgerBook(client, 60, 20, 3600, burst_peek=20).claim(refs[2], "copy-d")
    assert isinstance(last, Claimed) and last.behind == ()
    # A second close of the same burst (a stale copy) changes nothing.
    assert closer.close(CONVERSATION, "copy-a", verdict.members) is ScriptResult.HELD_ELSEWHERE


def test_a_message_edited_or_deleted_before_its_answer_keeps_its_place_but_never_ends_a_burst() -> None:
    head, edited, third = arrival(0), arrival(500), arrival(1000)
    withdrawn = Arrival(edited.ref, edited.task_id, edited.received_ms, edited.job, withdrawn=True)
    # In the middle: a member (its answer is left out when the burst is answered, workers/pipelines/burst.py).
    assert burst_of(head, [withdrawn, third], WINDOW, CAP, 5000, texts_only) == Closed((head, withdrawn, third))
    # At the end: left out, so the burst's answer lives in a message that is answered (its flag would stop it).
    assert burst_of(head, [third, withdrawn], WINDOW, CAP, 5000, texts_only) == Closed((head, third))
    lone = Arrival(head.ref, head.task_id, 0, head.job, withdrawn=True)
    assert burst_of(lone, [withdrawn], WINDOW, CAP, 5000, texts_only) == Closed((lone,))


@needs_redis
def test_a_close_refuses_a_burst_whose_last_message_was_edited_meanwhile(client: redis.Redis) -> None:
    jobs = [make_job(text) for text in ("hi", "I have a question")]
    refs = [ingest(client, job, 1000 * i) for i, job in enumerate(jobs)]
    claim = LedgerBook(client, 60, 20, 3600, burst_peek=20).claim(refs[0], "copy-a")
    assert isinstance(claim, Claimed)
    members = (Arrival(refs[0], jobs[0].job_id, 0, jobs[0]), *arrivals(client, claim.behind))
    client.hset(ledger_key(refs[1]), "flag:superseded", "edit-ref")  # the API's amendment, in between
    assert BurstCloser(client, 60).close(CONVERSATION, "copy-a", members) is ScriptResult.BURST_CHANGED
    assert client.llen(mailbox.inbox_key(CONVERSATION)) == 2 and not client.hexists(ledger_key(refs[0]), "flag:merged")
    assert arrivals(client, claim.behind)[0].withdrawn  # decided again: it is seen withdrawn
