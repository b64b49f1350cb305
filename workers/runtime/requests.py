"""Exits of a job that its own code cannot see, observed in Celery's parent (main) process.

Celery runs a task's `Request` in the parent; its `on_timeout` and `on_failure` are the documented hooks for a
pool process that was killed at the hard time limit or died (SIGKILL, OOM: `WorkerLostError`)
(https://docs.celeryq.dev/en/stable/userguide/tasks.html#requests-and-custom-requests). Here the parent records
the loss against the job and drops the dead copy's claim at once, so the user's next message is not held until
the conversation lease runs out. The job runner of the next copy then applies the retry decision to the loss.
Only a whole worker that dies (its parent too) is left to the lease.
"""

from __future__ import annotations

import threading
from typing import Any

from billiard.einfo import ExceptionInfo, ExceptionWithTraceback
from billiard.exceptions import WorkerLostError
from celery.worker.request import Request

from shared.config import get_settings
from shared.logging import get_logger
from shared.redis_client import sync_redis
from shared.redis_scripts import ScriptResult
from workers.delivery.attempts import JobAttempts
from workers.delivery.lease import ConversationLeases, LossKind

log = get_logger("workers.job")


class _ParentState:
    """The parent's own Redis collaborators, built on first use (most parents never need them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._built: tuple[JobAttempts, ConversationLeases] | None = None

    def get(self) -> tuple[JobAttempts, ConversationLeases]:
        with self._lock:
            if self._built is None:
                settings = get_settings()
                client = sync_redis(settings)
                self._built = (
                    JobAttempts(client),
                    ConversationLeases(client, settings.conversation_lease_seconds),
                )
            return self._built


_parent = _ParentState()


def job_ref(task_id: str, args: Any, attempts: JobAttempts) -> tuple[str, str, str] | None:
    """(ledger ref, job id, conversation) of a task's arguments, or None when they do not name a mailbox. The
    argument is the message's ledger ref (the job is in the ledger), or a whole job queued by an older API (whose
    ledger ref is its job id: workers/delivery/ledger_book.adopt)."""
    payload = args[0] if isinstance(args, list | tuple) and args else None
    if isinstance(payload, str) and payload:
        found = attempts.job_of(payload)
        return (payload, *found) if found is not None else None
    if not isinstance(payload, dict):
        return None
    job_id, conversation = payload.get("job_id") or task_id, payload.get("conversation")
    if isinstance(job_id, str) and isinstance(conversation, str) and job_id and conversation:
        return job_id, job_id, conversation
    return None


def report_lost(task_id: str, args: Any, kind: LossKind) -> None:
    """Count the attempt and leave a tombstone for the dead copy's claim, which the next claim takes and reports.
    With a hard time limit Celery acknowledges the message and will not redeliver it, so the job is handed to its
    queue again here; a lost worker's message is requeued by Celery itself (`task_reject_on_worker_lost`)."""
    try:
        attempts, leases = _parent.get()
        found = job_ref(task_id, args, attempts)
        if found is None:
            return
        ref, job_id, conversation = found
        attempts.increment(ref)  # a lost copy spends an attempt: a job that kills its process every time must end
        released = leases.release_lost(conversation, job_id, kind)
    except Exception as exc:  # Redis down: the conversation lease still brings the job back
        log.warning("job.lost_unreported", kind=kind.value, error=type(exc).__name__)
        return
    log.warning("job.lost", kind=kind.value, released=released is ScriptResult.RELEASED)


class JobRequest(Request):  # type: ignore[misc]  # celery ships no type hints
    def on_timeout(self, soft: bool, timeout: float) -> None:
        if not soft:
            report_lost(self.id, self.args, LossKind.TIME_LIMIT)
        super().on_timeout(soft, timeout)

    def on_failure(self, exc_info: ExceptionInfo, send_failed_event: bool = True, return_ok: bool = False) -> None:
        exc = exc_info.exception
        if isinstance(exc, ExceptionWithTraceback):
            exc = exc.exc
        if isinstance(exc, WorkerLostError):
            report_lost(self.id, self.args, LossKind.WORKER_LOST)
        super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)
