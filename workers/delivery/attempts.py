"""A job's one attempt counter.

Behind this small interface so the per-message state can move (e.g. into one Redis hash per message) without
touching the retry decision (workers/runtime/retry_policy.py), which only sees the number.

Key: `lp:attempts:<job_id>` (failed attempts so far), expiring an hour after the job's deadline could have passed.
"""

from __future__ import annotations

import redis

ATTEMPTS_PREFIX = "lp:attempts:"


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

    def current(self, job_id: str) -> int:
        """Failed attempts so far (read only when a claim reports that the previous copy was lost)."""
        return int(self._redis.get(ATTEMPTS_PREFIX + job_id) or 0)
