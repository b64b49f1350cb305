"""The one place that maps a pipeline's outcome to Celery: run, retry with backoff, or give up cleanly.

Every task is: validate the payload -> claim the conversation -> run the pipeline under a heartbeat ->
complete (hand the conversation's next message to its queue). A transient failure is retried within the job's
deadline; a permanent one (or the deadline) gets the user an apology and the job a dead-letter record.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, Protocol

from pydantic import ValidationError

from shared.errors import LooperaError, PermanentError, TransientError, UserInputError
from shared.jobs import TASK_FOR_QUEUE, InboundJob
from shared.logging import conversation_ref, correlation_id, get_logger
from workers import metrics
from workers.context import WorkerContext
from workers.conversation_lease import CLAIMED, HELD_ELSEWHERE, Heartbeat
from workers.phrases import guess_language, phrase
from workers.prompting import last_user_text
from workers.replies import send_text_reply
from workers.staleness import handled_as_stale

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


def run_job(task: RetryableTask, ctx: WorkerContext, payload: dict[str, Any], pipeline: Pipeline) -> None:
    queue = queue_of(task.name)
    started = time.monotonic()
    # "crashed" stays only if something raises past _run_job (Redis down); a retry sets "retrying" first.
    outcome = ["crashed"]
    try:
        outcome[0] = _run_job(task, ctx, payload, pipeline, queue, outcome)
    finally:
        metrics.JOBS.labels(queue, outcome[0]).inc()
        metrics.JOB_SECONDS.labels(queue, outcome[0]).observe(time.monotonic() - started)


def _run_job(
    task: RetryableTask, ctx: WorkerContext, payload: dict[str, Any], pipeline: Pipeline, queue: str, out: list[str]
) -> str:
    try:
        job = InboundJob.model_validate(payload)
    except ValidationError as exc:
        log.error("job.invalid_payload", task=task.name, errors=exc.error_count())
        ctx.dead_letters.add(task.name, payload, "invalid_payload", str(exc)[:500])
        return "invalid_payload"
    cid = correlation_id(job.message_id)
    token = ctx.leases.new_token()
    with metrics.stage(queue, "claim"):
        claim = ctx.leases.claim(job.conversation, job.job_id, token)
    if claim != CLAIMED:
        # A redelivered copy of a job that finished, or one another worker is running right now.
        log.info("job.skipped_copy", correlation_id=cid, running_elsewhere=claim == HELD_ELSEWHERE)
        return "skipped_copy"
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
            Heartbeat(interval, lambda: ctx.leases.renew(job.conversation, job.job_id, token)),
            metrics.stage(queue, "pipeline"),
        ):
            if not handled_as_stale(ctx, job):  # the one stale check, for every pipeline
                pipeline(ctx, job)
    except TransientError as exc:
        attempt = int(task.request.retries or 0)
        countdown = backoff_seconds(attempt, exc.retry_after)
        if time.time() + countdown < job.received_at + ctx.settings.task_deadline_seconds:
            log.warning("job.retrying", correlation_id=cid, reason=exc.reason, countdown=round(countdown, 2))
            ctx.leases.defer(job.conversation, job.job_id, token, countdown)
            out[0] = "retrying"
            raise task.retry(countdown=countdown, max_retries=None) from exc
        give_up(ctx, task.name, job, payload, exc)
        outcome = "failed"
    except (PermanentError, UserInputError) as exc:
        give_up(ctx, task.name, job, payload, exc)
        outcome = "failed"
    except Exception as exc:  # a bug or a hard limit: still answer, still record, never wedge the conversation
        log.exception("job.crashed", correlation_id=cid)
        give_up(ctx, task.name, job, payload, PermanentError("unexpected_error", type(exc).__name__))
        outcome = "failed"
    else:
        log.info("job.done", correlation_id=cid, seconds=round(time.monotonic() - started, 3))
        outcome = "done"
    ctx.leases.complete(job.conversation, job.job_id)
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
        language = guess_language(last_user_text(ctx.memory.load(job.conversation)))
        send_text_reply(ctx, job, phrase("apology", language), part="apology")
    except Exception as apology_error:
        log.error("job.apology_failed", correlation_id=cid, error=type(apology_error).__name__)
