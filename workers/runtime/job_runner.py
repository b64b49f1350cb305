"""The one place that maps a pipeline's outcome to Celery: run, retry with backoff, or give up cleanly.

Every task is: claim the conversation and load the message's ledger (one round trip; the task's only argument is
the ledger's ref) -> run the pipeline under a heartbeat -> complete (hand the conversation's next message to its
queue). A transient failure is retried within the job's
deadline and TASK_MAX_RETRIES attempts; a rate-limit deferral (shared Groq budget, 429 cooldown, another copy's
live send marker) only spends the deadline. A permanent failure, or the end of either bound, gets the user an
apology and the job a dead-letter record. Redis errors get neither: the job stays in its mailbox and comes back.
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
from workers import metrics
from workers.clients.rate_limit import RateLimited
from workers.context import WorkerContext
from workers.delivery.lease import Heartbeat
from workers.delivery.ledger import MessageLedger, SendInFlightError
from workers.delivery.ledger_book import Claimed, adopt
from workers.errors import LooperaError, PermanentError, TransientError, UserInputError
from workers.pipelines.conversation_language import language_for_reply
from workers.pipelines.payloads import user_text
from workers.pipelines.replies import send_text_reply
from workers.text.phrases import phrase

log = get_logger("workers.job")

_QUEUE_OF_TASK = {task.value: queue.value for queue, task in TASK_FOR_QUEUE.items()}

Pipeline = Callable[[WorkerContext, InboundJob], None]


class RetryableTask(Protocol):
    name: str

    @property
    def request(self) -> Any: ...

    def retry(self, *, countdown: float, max_retries: int | None) -> Exception: ...


def backoff_seconds(attempt: int, retry_after: float | None) -> float:
    """Full-jitter exponential backoff; a provider's Retry-After is a floor, never shortened."""
    if retry_after is not None and retry_after > 0:
        return retry_after + random.uniform(0, 1)  # noqa: S311 - jitter, not crypto
    return random.uniform(1, min(60.0, 2.0 * 2**attempt))  # noqa: S311


def queue_of(task_name: str) -> str:
    return _QUEUE_OF_TASK.get(task_name, "unknown")


def deferral_seconds(wait: float | None) -> float:
    """Come back when the budget has room. The small jitter spreads jobs that were told the same instant."""
    return max(0.05, wait or 0.0) + random.uniform(0.0, 0.3)  # noqa: S311


def count_attempt(ctx: WorkerContext, job: InboundJob) -> int:
    """Failed attempts of this job so far, this one included. Kept in the message's ledger, not in Celery's retry
    counter, because rate-limit deferrals go through Celery's retry too and must not use up attempts."""
    return ctx.ledgers.of(job).count_attempt()


def retry_later(task: RetryableTask, ctx: WorkerContext, job: InboundJob, token: str, countdown: float) -> Exception:
    """Release the claim, keep the conversation leased until the retry is due, and publish the retry.

    The countdown is capped at half the visibility timeout: a retry waits unacknowledged in a worker's memory,
    and one held longer than the visibility timeout would be handed out a second time. Coming back early is
    harmless: a Groq cooldown is still in Redis and simply defers the job again."""
    countdown = min(countdown, ctx.settings.celery_visibility_timeout / 2)
    ctx.leases.defer(job.conversation, job.job_id, token, countdown)
    return task.retry(countdown=countdown, max_retries=None)


def run_job(task: RetryableTask, ctx: WorkerContext, payload: str | dict[str, Any], pipeline: Pipeline) -> None:
    """`payload` is the message's ref (what the API queues), or a whole job (queued by an older API)."""
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
            log.error("job.invalid_payload", task=task.name, errors=exc.error_count())
            ctx.dead_letters.add(task.name, payload, "invalid_payload", str(exc)[:500])
            return "invalid_payload"
        payload = adopt(ctx.redis, legacy, ctx.settings.message_ledger_ttl_seconds)
    token = ctx.leases.new_token()
    with metrics.stage(queue, "claim"):
        claim = ctx.ledgers.claim(str(payload), token)
    if not isinstance(claim, Claimed):
        # A redelivered copy of a job that finished, one another worker is running right now, or no ledger.
        log.info("job.skipped_copy", ref=str(payload)[:12], claim=claim.name.lower())
        return "skipped_copy"
    if claim.job is None:
        log.error("job.invalid_payload", task=task.name, ref=claim.ref[:12], errors=claim.errors)
        ctx.dead_letters.add(task.name, {"ref": claim.ref}, "invalid_payload", claim.detail)
        ctx.leases.complete(claim.conversation, claim.task_id, token)
        return "invalid_payload"
    job, ledger = claim.job, claim.ledger
    record = job.model_dump() | {"ref": ledger.ref}
    with ctx.ledgers.running(ledger):
        if time.time() > job.received_at + ctx.settings.task_deadline_seconds:
            # Redelivered after its deadline (e.g. it kept killing its worker): answer and record, never loop.
            give_up(ctx, task.name, job, record, PermanentError("deadline_exceeded", "claimed after the deadline"))
            _finish(ledger, "failed")
            ctx.leases.complete(job.conversation, job.job_id, token)
            return "failed"
        outcome = _execute(task, ctx, job, record, pipeline, queue, token)
        _finish(ledger, outcome)
    ctx.leases.complete(job.conversation, job.job_id, token)
    return outcome


def _finish(ledger: MessageLedger, outcome: str) -> None:
    """Write what the run left pending; a run that did not simply finish says how it ended (for `loopera trace`)."""
    if outcome != "done":
        ledger.note("outcome", outcome)
    ledger.flush()


def _execute(
    task: RetryableTask,
    ctx: WorkerContext,
    job: InboundJob,
    payload: dict[str, Any],
    pipeline: Pipeline,
    queue: str,
    token: str,
) -> str:
    """Run the pipeline under a heartbeat and map its outcome: done, failed (answered + recorded), or a retry
    (raised). Returns the outcome for metrics."""
    cid = correlation_id(job.message_id)
    started = time.monotonic()
    log.info(
        "job.started",
        correlation_id=cid,
        queue=task.name,
        type=job.message_type,
        conversation=conversation_ref(job.conversation),
        attempt=task.request.retries,
    )
    interval = max(1.0, ctx.leases.lease_ms / 3000)
    try:
        with (
            Heartbeat(
                interval,
                lambda: ctx.leases.renew(job.conversation, job.job_id, token),
                max_seconds=ctx.settings.task_time_limit,
            ),
            metrics.stage(queue, "pipeline"),
        ):
            pipeline(ctx, job)
    except (RateLimited, SendInFlightError) as exc:
        # Over the shared Groq budget, or another copy's send marker is live: a deferral, not a failure. The
        # worker slot is freed at once; only the deadline bounds how often this happens.
        countdown = deferral_seconds(exc.retry_after)
        if time.time() + countdown < job.received_at + ctx.settings.task_deadline_seconds:
            log.info("job.deferred", correlation_id=cid, reason=exc.reason, countdown=round(countdown, 2))
            _finish(ctx.ledgers.of(job), "deferred")
            raise retry_later(task, ctx, job, token, countdown) from exc
        give_up(ctx, task.name, job, payload, exc)
        outcome = "failed"
    except TransientError as exc:
        attempt = count_attempt(ctx, job)
        countdown = backoff_seconds(attempt - 1, exc.retry_after)
        within_deadline = time.time() + countdown < job.received_at + ctx.settings.task_deadline_seconds
        if within_deadline and attempt <= ctx.settings.task_max_retries:
            log.warning("job.retrying", correlation_id=cid, reason=exc.reason, countdown=round(countdown, 2))
            _finish(ctx.ledgers.of(job), "retrying")
            raise retry_later(task, ctx, job, token, countdown) from exc
        give_up(ctx, task.name, job, payload, exc)
        outcome = "failed"
    except (PermanentError, UserInputError) as exc:
        give_up(ctx, task.name, job, payload, exc)
        outcome = "failed"
    except RedisError:
        # Our own state store is unreachable: nothing can be recorded or sent once, so do not apologise. The
        # job stays at the head of its mailbox; the reaper (or Celery's visibility timeout) runs it again once
        # Redis is back.
        log.warning("job.redis_unavailable", correlation_id=cid)
        raise
    except Exception as exc:  # a bug or a hard limit: still answer, still record, never wedge the conversation
        log.exception("job.crashed", correlation_id=cid)
        give_up(ctx, task.name, job, payload, PermanentError("unexpected_error", type(exc).__name__))
        outcome = "failed"
    else:
        log.info("job.done", correlation_id=cid, seconds=round(time.monotonic() - started, 3))
        outcome = "done"
    return outcome


def give_up(ctx: WorkerContext, task_name: str, job: InboundJob, payload: dict[str, Any], exc: LooperaError) -> None:
    cid = correlation_id(job.message_id)
    if isinstance(exc, PermanentError) and exc.ops_alert:
        # One loud, greppable event per failure that needs a human: bad token, retired model, terms.
        log.error("ops.alert", correlation_id=cid, reason=exc.reason, detail=exc.detail)
    log.error("job.failed", correlation_id=cid, reason=exc.reason)
    ctx.dead_letters.add(task_name, payload, exc.reason, exc.detail)
    if exc.reason.startswith("graph_") or exc.reason == "untrusted_host":
        return  # the failure is the sending channel itself: an apology would fail the same way
    try:
        language = language_for_reply(ctx, job, user_text(job.message) or "")
        send_text_reply(ctx, job, phrase("apology", language), part="apology")
    except Exception as apology_error:
        log.error("job.apology_failed", correlation_id=cid, error=type(apology_error).__name__)
