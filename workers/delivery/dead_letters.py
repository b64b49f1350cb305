"""Dead-letter list: jobs that finally failed, with their payload and reason, for inspection and replay."""

from __future__ import annotations

import time
from typing import Any

import orjson
import redis

from shared.dead_letters import DLQ_KEY, DLQ_MAX

__all__ = ["DLQ_KEY", "DLQ_MAX", "DeadLetters"]


class DeadLetters:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def add(self, task_name: str, payload: dict[str, Any], reason: str, detail: str = "") -> None:
        record = {
            "task": task_name,
            "payload": payload,
            "reason": reason,
            "detail": detail,
            "failed_at": time.time(),
        }
        pipe = self._redis.pipeline(transaction=True)
        pipe.lpush(DLQ_KEY, orjson.dumps(record))
        pipe.ltrim(DLQ_KEY, 0, DLQ_MAX - 1)
        pipe.execute()

    def list(self, limit: int = 50) -> list[dict[str, Any]]:
        return [orjson.loads(raw) for raw in self._redis.lrange(DLQ_KEY, 0, limit - 1)]

    def peek(self, raw_index: int) -> tuple[bytes, dict[str, Any]] | None:
        """The raw entry (for `discard`) and its record, leaving it in the list."""
        raw = self._redis.lindex(DLQ_KEY, raw_index)
        if raw is None:
            return None
        return bytes(raw), orjson.loads(raw)  # type: ignore[arg-type]  # stubs say str; bytes arrive

    def discard(self, raw: bytes) -> bool:
        return bool(self._redis.lrem(DLQ_KEY, 1, raw))  # type: ignore[arg-type]

    def remove(self, raw_index: int) -> dict[str, Any] | None:
        raw = self._redis.lindex(DLQ_KEY, raw_index)
        if raw is None:
            return None
        self._redis.lrem(DLQ_KEY, 1, bytes(raw))  # type: ignore[arg-type]  # stubs say str; bytes works
        record: dict[str, Any] = orjson.loads(raw)
        return record
