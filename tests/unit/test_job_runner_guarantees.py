"""job_runner's retry policy and the mailbox scripts, against a real redis-server (fake Graph, fake Celery task)."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from shared import mailbox
from shared.config import Settings
from shared.jobs import InboundJob
from shared.ledger import ledger_key
from shared.redis_scripts import ScriptResult
from tests.processes import RedisServer
from workers.clients.rate_limit import RateLimited, RateLimiter
from workers.context import WorkerContext
from workers.delivery.attempts import JobAttempts
from workers.delivery.dead_letters import DeadLetters
from workers.delivery.lease import ConversationLeases, LossKind
from workers.delivery.memory import ConversationMemory
from workers.errors import TransientError
from workers.runtime.job_runner import run_job

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")


class Retry(Exception):
    pass


class FakeRequest:
    retries = 0


class FakeTask:
    name = "loopera.text.handle_message"

    def __init__(self) -> None:
        self.request = FakeRequest()
        self.countdowns: list[float] = []

    def retry(self, *, countdown: float, max_retries: int | None) -> Exception:
        self.countdowns.append(countdown)
        self.request.retries += 1
        return Retry()


class FakeGraph:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def send_text(
        self, to: str | None, recipient: str | None, body: str, reply_to: str | None, group: bool = False
    ) -> str:
        self.sent.append(body)
        return f"wamid.out.{len(self.sent)}"

    def mark_read_and_typing(self, message_id: str) -> None:
        pass


@pytest.fixture
def ctx(server: RedisServer) -> Iterator[WorkerContext]:
    client = redis.Redis.from_url(server.url)
    client.flushdb()
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        task_max_retries=2,
        task_deadline_seconds=60,
        task_time_limit=25,
        celery_visibility_timeout=30,
        conversation_lease_seconds=5,
        coalesce_window_seconds=0,  # one message at a time here; bursts: tests/unit/workers/test_bursts.py
    )
    context = WorkerContext(
        settings=settings,
        redis=client,
        graph=FakeGraph(),  # type: ignore[arg-type]
        groq=None,  # type: ignore[arg-type]
        memory=ConversationMemory(client),
        leases=ConversationLeases(client, settings.conversation_lease_seconds),
        dead_letters=DeadLetters(client),
        attempts=JobAttempts(client),
        system_prompt="",
        limiter=RateLimiter(client, settings),
    )
    yield context
    client.close()


def enqueue(ctx: WorkerContext, received_at: float | None = None) -> dict[str, Any]:
    """A job at the head of its conversation's mailbox, as the webhook's INGEST leaves it."""
    job_id = str(uuid.uuid4())
    payload = InboundJob(
        job_id=job_id,
        message_id=f"wamid.{uuid.uuid4().hex}",
        message_type="text",
        conversation="15550009999",
        phone_number_id="1",
        received_at=received_at if received_at is not None else time.time(),
        message={"type": "text", "text": {"body": "hi"}},
        to="15550009999",
    ).model_dump()
    ctx.redis.rpush(mailbox.inbox_key(payload["conversation"]), f"{job_id} text {{}}")
    return payload


def sent(ctx: WorkerContext) -> list[str]:
    return ctx.graph.sent  # type: ignore[attr-defined, no-any-return]


def test_rate_limit_deferrals_do_not_use_up_attempts(ctx: WorkerContext) -> None:
    payload, task = enqueue(ctx), FakeTask()

    def over_budget(_: WorkerContext, __: InboundJob) -> None:
        raise RateLimited("m", "requests", 0.5)

    for _ in range(5):  # more than task_max_retries
        with pytest.raises(Retry):
            run_job(task, ctx, payload, over_budget)
    assert all(0.5 <= c <= 0.8 for c in task.countdowns)
    assert ctx.dead_letters.list() == [] and sent(ctx) == []

    def answer(c: WorkerContext, job: InboundJob) -> None:
        c.graph.send_text(job.to, None, "done", None)

    run_job(task, ctx, payload, answer)
    assert sent(ctx) == ["done"]
    assert not ctx.redis.exists(mailbox.inbox_key(payload["conversation"]))


def test_transient_failures_stop_after_max_retries_with_apology_and_dead_letter(ctx: WorkerContext) -> None:
    payload, task = enqueue(ctx), FakeTask()

    def down(_: WorkerContext, __: InboundJob) -> None:
        raise TransientError("groq_http_503", "down")

    for _ in range(2):
        with pytest.raises(Retry):
            run_job(task, ctx, payload, down)
    run_job(task, ctx, payload, down)  # third failure > task_max_retries=2
    assert [r["reason"] for r in ctx.dead_letters.list()] == ["groq_http_503"]
    assert len(sent(ctx)) == 1 and sent(ctx)[0].startswith("Sorry")


def test_countdowns_are_capped_below_the_visibility_timeout(ctx: WorkerContext) -> None:
    payload, task = enqueue(ctx), FakeTask()

    def long_cooldown(_: WorkerContext, __: InboundJob) -> None:
        raise RateLimited("m", "429", 40.0)  # within the 60 s deadline, above visibility/2 = 15 s

    with pytest.raises(Retry):
        run_job(task, ctx, payload, long_cooldown)
    assert task.countdowns == [15.0]


def test_redis_errors_neither_apologise_nor_dead_letter_and_keep_the_job(ctx: WorkerContext) -> None:
    payload = enqueue(ctx)

    def store_down(_: WorkerContext, __: InboundJob) -> None:
        raise redis.ConnectionError("gone")

    with pytest.raises(redis.ConnectionError):
        run_job(FakeTask(), ctx, payload, store_down)
    assert sent(ctx) == [] and ctx.dead_letters.list() == []
    assert ctx.redis.llen(mailbox.inbox_key(payload["conversation"])) == 1  # the reaper will hand it out again


def test_a_job_claimed_after_its_deadline_is_given_up_not_run(ctx: WorkerContext) -> None:
    payload = enqueue(ctx, received_at=time.time() - 120)
    ran: list[bool] = []
    run_job(FakeTask(), ctx, payload, lambda c, j: ran.append(True))
    assert ran == []
    assert [r["reason"] for r in ctx.dead_letters.list()] == ["deadline_exceeded"]
    assert not ctx.redis.exists(mailbox.inbox_key(payload["conversation"]))


def test_complete_does_not_pop_a_job_another_live_copy_holds(ctx: WorkerContext) -> None:
    payload = enqueue(ctx)
    conversation, job_id = payload["conversation"], payload["job_id"]
    leases = ctx.leases
    assert leases.claim(conversation, job_id, "copy-a") is ScriptResult.CLAIMED
    assert leases.reap() == 0
    # copy-a stopped heart-beating; the reaper handed the job to copy-b, which is still running.
    ctx.redis.delete(mailbox.run_key(job_id))
    assert leases.claim(conversation, job_id, "copy-b") is ScriptResult.CLAIMED
    assert leases.complete(conversation, job_id, "copy-a") is ScriptResult.HELD_ELSEWHERE
    assert ctx.redis.llen(mailbox.inbox_key(conversation)) == 1
    assert leases.complete(conversation, job_id, "copy-b") is ScriptResult.MAILBOX_EMPTY
    assert not ctx.redis.exists(mailbox.inbox_key(conversation))


def test_a_live_send_marker_defers_until_it_expires_without_spending_attempts(ctx: WorkerContext) -> None:
    from workers.pipelines.replies import send_text_reply

    payload, task = enqueue(ctx), FakeTask()
    # A copy that was killed mid-send left its marker for another 40 s.
    # (A job queued whole has its ledger keyed by its job id.)
    until = int(time.time() * 1000) + 40_000
    ctx.redis.hset(ledger_key(payload["job_id"]), mapping={"send:text:0": "sending", "send:text:0:until": until})

    def reply(c: WorkerContext, job: InboundJob) -> None:
        send_text_reply(c, job, "hello")

    for _ in range(4):  # more than task_max_retries
        with pytest.raises(Retry):
            run_job(task, ctx, payload, reply)
    assert all(c >= 15.0 for c in task.countdowns)  # waits for the marker (capped at visibility/2), not 5 s
    assert sent(ctx) == [] and ctx.dead_letters.list() == []
    assert not ctx.redis.hexists(ledger_key(payload["job_id"]), "attempts")


def test_an_invalid_payload_is_dead_lettered_and_releases_its_conversation(ctx: WorkerContext) -> None:
    """tests/fixtures/cases/hardening/worker-rejects-payload.json: a contact name the schema rejects. Before, the
    job was dead-lettered but stayed at the head of its mailbox: the reaper handed it out again every lease."""
    bad = enqueue(ctx) | {"contact_name": 12345}
    nxt = enqueue(ctx)  # the user's next message waits behind it
    run_job(FakeTask(), ctx, bad, lambda c, j: None)
    assert [r["reason"] for r in ctx.dead_letters.list()] == ["invalid_payload"]
    inbox = mailbox.inbox_key(bad["conversation"])
    assert [e.split(b" ")[0].decode() for e in ctx.redis.lrange(inbox, 0, -1)] == [nxt["job_id"]]
    assert ctx.redis.llen("text") == 1  # the next message was handed to its queue at once


def report_lost(ctx: WorkerContext, payload: dict[str, Any], kind: LossKind) -> None:
    """What Celery's parent process does when the pool process running the job dies (runtime/requests.py)."""
    ctx.attempts.increment(payload["job_id"])
    assert ctx.leases.release_lost(payload["conversation"], payload["job_id"], kind) is ScriptResult.RELEASED


def test_a_job_whose_worker_was_lost_runs_again_at_once_until_its_attempts_are_spent(ctx: WorkerContext) -> None:
    payload = enqueue(ctx)
    conversation, job_id = payload["conversation"], payload["job_id"]
    assert ctx.leases.claim(conversation, job_id, "dead-copy") is ScriptResult.CLAIMED
    report_lost(ctx, payload, LossKind.WORKER_LOST)
    # The next copy takes the claim at once (no lease to wait out) and hears how the previous one ended.
    assert ctx.leases.claim(conversation, job_id, "next-copy") is ScriptResult.CLAIMED_AFTER_WORKER_LOST
    for _ in range(ctx.settings.task_max_retries - 1):
        report_lost(ctx, payload, LossKind.WORKER_LOST)
        assert ctx.leases.claim(conversation, job_id, "next-copy") is ScriptResult.CLAIMED_AFTER_WORKER_LOST
    report_lost(ctx, payload, LossKind.WORKER_LOST)  # one loss beyond TASK_MAX_RETRIES
    ran: list[bool] = []
    run_job(FakeTask(), ctx, payload, lambda c, j: ran.append(True))
    assert ran == []
    assert [r["reason"] for r in ctx.dead_letters.list()] == ["worker_lost"]
    assert len(sent(ctx)) == 1 and sent(ctx)[0].startswith("Sorry")
    assert not ctx.redis.exists(mailbox.inbox_key(conversation))


def test_a_lost_worker_within_its_attempts_runs_the_job(ctx: WorkerContext) -> None:
    payload = enqueue(ctx)
    assert ctx.leases.claim(payload["conversation"], payload["job_id"], "dead-copy") is ScriptResult.CLAIMED
    report_lost(ctx, payload, LossKind.WORKER_LOST)
    ran: list[bool] = []
    run_job(FakeTask(), ctx, payload, lambda c, j: ran.append(True))
    assert ran == [True] and ctx.dead_letters.list() == []
    assert not ctx.redis.exists(mailbox.inbox_key(payload["conversation"]))


def test_a_hard_time_limit_hands_the_job_out_again_and_ends_it_with_an_apology(ctx: WorkerContext) -> None:
    payload = enqueue(ctx)
    conversation, job_id = payload["conversation"], payload["job_id"]
    assert ctx.leases.claim(conversation, job_id, "killed-copy") is ScriptResult.CLAIMED
    report_lost(ctx, payload, LossKind.TIME_LIMIT)
    assert ctx.redis.llen("text") == 1  # handed out again now: Celery acknowledged the killed copy's message
    report_lost(ctx, payload, LossKind.WORKER_LOST)  # may follow; must not turn the time limit into a rerun
    ran: list[bool] = []
    run_job(FakeTask(), ctx, payload, lambda c, j: ran.append(True))
    assert ran == []
    assert [r["reason"] for r in ctx.dead_letters.list()] == ["time_limit"]
    assert not ctx.redis.exists(mailbox.inbox_key(conversation))


def test_the_tasks_leave_the_retry_budget_to_the_job_runner() -> None:
    from workers.runtime import tasks

    app = tasks.app
    names = [name for name in app.tasks if name.startswith("loopera.")]
    assert len(names) == 3
    for name in names:
        assert app.tasks[name].max_retries is None  # Celery's documented "retry forever"; its default is 3
        assert app.tasks[name].Request == "workers.runtime.requests:JobRequest"
