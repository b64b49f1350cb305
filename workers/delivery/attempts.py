"""A job's one attempt counter, and the losses Celery's parent process reports for it.

Behind this small interface so the per-message state can move (e.g. into one Redis hash per message) without
touching the retry decision (workers/runtime/retry_policy.py), which only sees the numbers.

Keys: `lp:attempts:<job_id>` (failed attempts so far) and `lp:lost:<job_id>` (why the last copy vanished:
a `LossKind`), both expiring an hour after the job's deadline could have passed.
"""

from __future__ import annotations

from enum import StrEnum

import redis

from workers.errors import JobTimeLimit, LooperaError, WorkerLost

ATTEMPTS_PREFIX = "lp:attempts:"
LOST_PREFIX = "lp:lost:"


class LossKind(StrEnum):
    """How a copy of a job ended where its own code could not see it: Celery's parent process saw it."""

    WORKER_LOST = "worker_lost"  # the pool process died (SIGKILL, OOM); Celery requeues the message
    TIME_LIMIT = "time_limit"  # the pool process was killed at TASK_TIME_LIMIT; Celery acknowledges the message

    def as_error(self) -> LooperaError:
        if self is LossKind.TIME_LIMIT:
            return JobTimeLimit("time_limit", "the job overran TASK_TIME_LIMIT and its process was killed")
        return WorkerLost()


class JobAttempts:
    def __init__(self, client: redis.Redis, ttl_seconds: int) -> None:
        self._redis = client
        self._ttl = ttl_seconds

    def increment(self, job_id: str) -> int:
        """Count one more failed attempt; returns the count, this one included."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.incr(ATTEMPTS_PREFIX + job_id)
        pipe.expire(ATTEMPTS_PREFIX + job_id, self._ttl)
        attempts, _ = pipe.execute()
        return int(attempts)

    def record_loss(self, job_id: str, kind: LossKind) -> None:
        """Called in Celery's parent process: the copy running `job_id` is gone. A lost worker spends an attempt
        (a job that kills its process every time must end); a time limit ends the job at its next claim."""
        pipe = self._redis.pipeline(transaction=True)
        # A hard time limit may also surface as a lost worker: never let that overwrite the time limit.
        pipe.set(LOST_PREFIX + job_id, kind.value, ex=self._ttl, nx=kind is LossKind.WORKER_LOST)
        pipe.incr(ATTEMPTS_PREFIX + job_id)
        pipe.expire(ATTEMPTS_PREFIX + job_id, self._ttl)
        pipe.execute()

    def take_loss(self, job_id: str) -> tuple[LooperaError | None, int]:
        """At claim: the loss reported for the previous copy (consumed), and the attempts so far."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.getdel(LOST_PREFIX + job_id)
        pipe.get(ATTEMPTS_PREFIX + job_id)
        lost, attempts = pipe.execute()
        if lost is None:
            return None, int(attempts or 0)
        try:
            kind = LossKind(lost.decode() if isinstance(lost, bytes) else str(lost))
        except ValueError:
            kind = LossKind.WORKER_LOST
        return kind.as_error(), int(attempts or 0)
