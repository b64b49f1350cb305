"""The one place that ends a job: it runs the pipeline, asks the retry decision (retry_policy.py) what follows,
and applies it. Every exit the worker can see goes through `_apply`, which releases or hands on the conversation:

| exit                                   | decision      | the conversation                                  |
|----------------------------------------|---------------|---------------------------------------------------|
| pipeline finished                      | Done          | completed: its next message is dispatched         |
| burst still open (pipelines/burst.py)  | Defer         | claim dropped, leased until the window closes     |
| merged into its burst's last message   | (merged)      | the burst's last message is dispatched            |
| wait (shared budget, send in flight)   | Defer         | claim dropped, leased until the retry is due      |
| transient failure within the budget    | RetryLater    | claim dropped, leased until the retry is due      |
| permanent / budget or deadline spent / | GiveUp        | apology (unless the channel itself failed), dead  |
| soft time limit / crash (a bug)        |               | letter, completed                                 |
| invalid payload (or ledger's job)      | (dead letter) | completed, when the payload names its mailbox     |
| Redis unreachable                      | LeaveToLease  | untouched: the lease brings the job back          |

Exits the worker cannot see are reported by Celery's parent process (runtime/requests.py): a pool process that
died or was killed at the hard time limit leaves a tombstone for its claim, which the next copy takes at once; the
claim reports how the previous copy ended, and the decision applies to that (`before_run`). A whole worker that dies
is covered by the conversation lease (the reaper).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, Protocol

from celery.exceptions import Retry
from pydantic import ValidationError
from redis.exceptions import RedisError

from shared.jobs import TASK_FOR_QUEUE, InboundJob
from shared.logging import conversation_ref, correlation_id, get_logger
from shared.redis_scripts import ScriptResult
from workers import metrics
from workers.context import WorkerContext
from workers.delivery.lease import Heartbeat
from workers.delivery.ledger_book import Claimed, adopt
from workers.errors import LooperaError, PermanentError, SendingChannelError, TransientError
from workers.pipelines.ack_reaction import AckReaction, withdraw_ack_reaction
from workers.pipelines.burst import Lost, Merged, Wait, hold_for_burst
from workers.pipelines.conversation_language import language_for_reply
from workers.pipelines.payloads import user_text
from workers.pipelines.replies import send_text_reply
from workers.runtime.retry_policy import (
    Decision,
    Defer,
    Done,
    GiveUp,
    LeaveToLease,
    RetryBudget,
    RetryLater,
    before_run,
    decide,
    spends_attempt,
)
from workers.text.phrases import phrase

log = get_logger("workers.job")

_QUEUE_OF_TASK = {task.value: queue.value for queue, task in TASK_FOR_QUEUE.items()}

Pipeline = Callable[[WorkerContext, InboundJob], None]


class RetryableTask(Protocol):
    name: str

    @property
    def request(self) -> Any: ...

    def retry(self, *, countdown: float, max_retries: int | None) -> Exception: ...


def queue_of(task_name: str) -> str:
    return _QUEUE_OF_TASK.get(task_name, "unknown")


def retry_budget(ctx: WorkerContext) -> RetryBudget:
    return RetryBudget(ctx.settings.task_max_retries, ctx.settings.celery_visibility_timeout / 2)


def run_job(task: RetryableTask, ctx: WorkerContext, payload: str | dict[str, Any], pipeline: Pipeline) -> None:
    """Run one job to its end. `payload` is the message's ledger ref (what the API queues: the job is in the
    ledger, shared/ledger.py), or a whole job (queued by an older API). Raises Celery's `Retry` for a deferral
    or retry, and `RedisError` when our own store is unreachable (the lease brings the job back); everything else
    ends here."""
    queue = queue_of(task.name)
    started = time.monotonic()
    outcome = "crashed"  # kept only if an error escapes (Redis down): the job is then run again later
    try:
        outcome = _run_job(task, ctx, payload, pipeline, queue)
    except Retry:
        outcome = "retrying"
        raise
    finally:
        metrics.JOBS.labels(queue, outcome).inc()
        metrics.JOB_SECONDS.labels(queue, outcome).observe(time.monotonic() - started)


def _run_job(
    task: RetryableTask, ctx: WorkerContext, payload: str | dict[str, Any], pipeline: Pipeline, queue: str
) -> str:
    if isinstance(payload, dict):
        try:
            legacy = InboundJob.model_validate(payload)
        except ValidationError as exc:
            return _reject_payload(task, ctx, payload, exc)
        payload = adopt(ctx.redis, legacy, ctx.settings.message_ledger_ttl_seconds)
    token = ctx.leases.new_token()
    with metrics.stage(queue, "claim"):
        # One round trip: the mailbox claim, the message's ledger and the conversation's memory.
        claim = ctx.ledgers.claim(str(payload), token)
    if not isinstance(claim, Claimed):
        # A redelivered copy of a job that finished, one another worker is running right now, or no ledger.
        log.info("job.skipped_copy", ref=str(payload)[:12], running_elsewhere=claim is ScriptResult.HELD_ELSEWHERE)
        return "skipped_copy"
    if claim.job is None:
        return _reject_ledger(task, ctx, claim, token)
    job, ledger = claim.job, claim.ledger
    record = job.model_dump() | {"ref": ledger.ref}  # what a dead letter keeps (workers/delivery/requeue.py)
    with ctx.ledgers.running(ledger):
        # How the previous copy ended, when Celery's parent saw it die; its attempts came with the ledger.
        attempt = int(ledger.fields.get("attempts") or 0) if claim.lost else 0
        error = claim.lost.as_error() if claim.lost else None
        early_end = before_run(error, attempt, _deadline(ctx, job), time.time(), retry_budget(ctx))
        if early_end is not None:
            return _apply(task, ctx, job, record, token, early_end)
        held = _held_for_burst(task, ctx, claim, record, token)
        if held is not None:
            return held
        return _apply(task, ctx, job, record, token, _execute(task, ctx, job, pipeline, queue, token))


def _held_for_burst(
    task: RetryableTask, ctx: WorkerContext, claim: Claimed, record: dict[str, Any], token: str
) -> str | None:
    """Burst merging (workers/pipelines/burst.py): the outcome when the job waits for its burst to close (a
    deferral, no slot held) or was merged into the burst's last message; None to run its pipeline."""
    assert claim.job is not None
    match hold_for_burst(ctx, claim, token):
        case Wait(seconds=seconds):
            # Never longer than a retry may wait unacknowledged (a long COALESCE_MAX_WAIT_SECONDS): it looks again.
            countdown = min(seconds, retry_budget(ctx).max_countdown)
            return _apply(task, ctx, claim.job, record, token, Defer(countdown, "burst_window"))
        case Merged():
            _finish(ctx, claim.job, "merged")
            return "merged"
        case Lost():
            return "skipped_copy"
    return None


def _deadline(ctx: WorkerContext, job: InboundJob) -> float:
    return job.received_at + ctx.settings.task_deadline_seconds


def _reject_payload(task: RetryableTask, ctx: WorkerContext, payload: dict[str, Any], exc: ValidationError) -> str:
    """A payload this worker's schema rejects (a rolling deploy's schema mismatch, a bug in the API): record it
    and release its conversation, or the reaper would hand it out again every lease, forever."""
    log.error("job.invalid_payload", task=task.name, errors=exc.error_count())
    ctx.dead_letters.add(task.name, payload, "invalid_payload", str(exc)[:500])
    job_id, conversation = payload.get("job_id"), payload.get("conversation")
    if isinstance(job_id, str) and isinstance(conversation, str) and job_id and conversation:
        ctx.leases.complete(conversation, job_id)
    else:
        log.error("job.invalid_payload_unreleased", task=task.name)  # its lease runs out; the reaper retries
    return "invalid_payload"


def _reject_ledger(task: RetryableTask, ctx: WorkerContext, claim: Claimed, token: str) -> str:
    """A ledger whose job this worker's schema rejects: record it and release its conversation."""
    log.error("job.invalid_payload", task=task.name, ref=claim.ref[:12], errors=claim.errors)
    ctx.dead_letters.add(task.name, {"ref": claim.ref}, "invalid_payload", claim.detail)
    ctx.leases.complete(claim.conversation, claim.task_id, token)
    return "invalid_payload"


def _finish(ctx: WorkerContext, job: InboundJob, outcome: str) -> None:
    """Write what the run left pending in the ledger (one round trip, none when nothing is); a run that did not
    simply finish says how it ended (for `loopera trace`)."""
    ledger = ctx.ledgers.of(job)
    if outcome != "done":
        ledger.note("outcome", outcome)
    ledger.flush()


def _execute(
    task: RetryableTask, ctx: WorkerContext, job: InboundJob, pipeline: Pipeline, queue: str, token: str
) -> Decision:
    """Run the pipeline under a heartbeat; return the retry decision for how it ended."""
    cid = correlation_id(job.message_id)
    started = time.monotonic()
    log.info(
        "job.started",
        correlation_id=cid,
        queue=task.name,
        type=job.message_type,
        conversation=conversation_ref(job.conversation),
        delivery=task.request.retries,
    )
    interval = max(1.0, ctx.leases.lease_ms / 3000)
    error: Exception | None = None
    try:
        with (
            Heartbeat(
                interval,
                lambda: ctx.leases.renew(job.conversation, job.job_id, token),
                max_seconds=ctx.settings.task_time_limit,
            ),
            AckReaction(ctx, job),
            metrics.stage(queue, "pipeline"),
        ):
            pipeline(ctx, job)
    except Exception as exc:  # every failure is mapped by the one decision below, bugs included
        error = exc
        if not isinstance(exc, LooperaError | RedisError):
            log.exception("job.crashed", correlation_id=cid)
    else:
        log.info("job.done", correlation_id=cid, seconds=round(time.monotonic() - started, 3))
    attempt = ctx.ledgers.of(job).count_attempt() if spends_attempt(error) else 0
    retry_after = error.retry_after if isinstance(error, TransientError) else None
    return decide(error, attempt, _deadline(ctx, job), time.time(), retry_after, retry_budget(ctx), random.random())  # noqa: S311 - jitter


def _apply(
    task: RetryableTask, ctx: WorkerContext, job: InboundJob, payload: dict[str, Any], token: str, decision: Decision
) -> str:
    """Apply a decision; the only place a claimed job's conversation is completed, deferred or left to its lease.
    Returns the outcome for metrics (or raises Celery's Retry / the RedisError)."""
    cid = correlation_id(job.message_id)
    match decision:
        case Done():
            withdraw_ack_reaction(ctx, job)
            _finish(ctx, job, "done")
            ctx.leases.complete(job.conversation, job.job_id, token)
            ledger = ctx.ledgers.of(job)
            if ledger.discard_when_done:
                # After COMPLETE: a copy redelivered later finds no ledger and is skipped (its dedupe marker stays).
                ctx.redis.delete(ledger.key)
            return "done"
        case GiveUp():
            give_up(ctx, task.name, job, payload, decision.error)
            withdraw_ack_reaction(ctx, job)
            _finish(ctx, job, "failed")
            ctx.leases.complete(job.conversation, job.job_id, token)
            return "failed"
        case Defer() | RetryLater():
            if isinstance(decision, Defer):
                log.info(
                    "job.deferred", correlation_id=cid, reason=decision.reason, countdown=round(decision.countdown, 2)
                )
            else:
                log.warning(
                    "job.retrying", correlation_id=cid, reason=decision.reason, countdown=round(decision.countdown, 2)
                )
            _finish(ctx, job, "deferred" if isinstance(decision, Defer) else "retrying")
            # Release the claim, keep the conversation leased until the retry is due, and publish the retry.
            # max_retries=None: unlimited for Celery (the tasks' default is None too); the budget is ours.
            ctx.leases.defer(job.conversation, job.job_id, token, decision.countdown)
            raise task.retry(countdown=decision.countdown, max_retries=None)
        case LeaveToLease():
            # Our own state store is unreachable: nothing can be recorded or sent once, so do not apologise. The
            # job stays at the head of its mailbox; the reaper (or Celery's visibility timeout) runs it again once
            # Redis is back.
            log.warning("job.redis_unavailable", correlation_id=cid)
            raise decision.error


def give_up(ctx: WorkerContext, task_name: str, job: InboundJob, payload: dict[str, Any], exc: LooperaError) -> None:
    cid = correlation_id(job.message_id)
    if isinstance(exc, PermanentError) and exc.ops_alert:
        # One loud, greppable event per failure that needs a human: bad token, retired model, terms.
        log.error("ops.alert", correlation_id=cid, reason=exc.reason, detail=exc.detail)
    log.error("job.failed", correlation_id=cid, reason=exc.reason)
    ctx.dead_letters.add(task_name, payload, exc.reason, exc.detail)
    if isinstance(exc, SendingChannelError):
        return  # the failure is the sending channel itself: an apology would fail the same way
    try:
        language = language_for_reply(ctx, job, user_text(job.message) or "")
        send_text_reply(ctx, job, phrase("apology", language), part="apology")
    except Exception as apology_error:
        log.error("job.apology_failed", correlation_id=cid, error=type(apology_error).__name__)
