"""A job's one attempt counter: the `attempts` field of its message's ledger (shared/ledger.py), so it shares the
ledger's key and TTL and the claim loads it with everything else.

Behind this small interface so the retry decision (workers/runtime/retry_policy.py) only sees the number. `ref` is
the message's ledger ref (a job queued whole by an older API has its job id as ref:
workers/delivery/ledger_book.adopt).
"""

from __future__ import annotations

import redis

from shared.ledger import as_text, ledger_key


class JobAttempts:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def increment(self, ref: str) -> int:
        """Count one more failed attempt; returns the count, this one included."""
        return int(self._redis.hincrby(ledger_key(ref), "attempts", 1))

    def current(self, ref: str) -> int:
        """Failed attempts so far (a running job reads them from the ledger its claim loaded instead)."""
        return int(self._redis.hget(ledger_key(ref), "attempts") or 0)

    def job_of(self, ref: str) -> tuple[str, str] | None:
        """(task id, conversation) of the job whose ledger is `ref`, or None without a ledger."""
        task, conversation = self._redis.hmget(ledger_key(ref), ["task", "conv"])
        if not task or not conversation:
            return None
        return as_text(task), as_text(conversation)
