"""Send-once: every outbound message part has a marker keyed by (inbound message id, part).

A redelivered or retried job skips the parts Graph already accepted. The marker says `done` only after Graph
answered; while a send is in flight it says `sending` for a short window, so a concurrent copy waits instead of
sending twice. Limit: Graph has no idempotency key, so a send whose answer was lost (timeout after Meta accepted
it) is retried and can arrive twice. That is the one at-least-once edge, documented in the README.
"""

from __future__ import annotations

from collections.abc import Callable

import redis

from workers.errors import WaitError

SENT_PREFIX = "lp:sent:"
_DONE = b"done"


class SendInFlightError(WaitError):
    """Another copy is sending this part, or died while sending it: come back when its marker has expired.
    A wait, not a failure: the job runner defers without spending an attempt (a copy killed mid-send leaves the
    marker for up to `in_flight_seconds`, longer than all attempts' backoffs together)."""

    def __init__(self, retry_after: float = 5.0) -> None:
        super().__init__("send_in_flight", "another copy of this job is sending this part", retry_after=retry_after)


class Outbox:
    def __init__(self, client: redis.Redis, done_ttl_seconds: int, in_flight_seconds: int = 60) -> None:
        self._redis = client
        self._done_ttl = done_ttl_seconds
        self._in_flight_ms = in_flight_seconds * 1000

    @staticmethod
    def key(message_id: str, part: str) -> str:
        return f"{SENT_PREFIX}{message_id}:{part}"

    def already_sent(self, message_id: str, part: str) -> bool:
        return self._redis.get(self.key(message_id, part)) == _DONE

    def send_once(self, message_id: str, part: str, send: Callable[[], str]) -> bool:
        """Run `send` unless this part was sent before. Returns True if it sent now."""
        key = self.key(message_id, part)
        if not self._redis.set(key, b"sending", nx=True, px=self._in_flight_ms):
            if self._redis.get(key) == _DONE:
                return False
            remaining_ms = int(self._redis.pttl(key))
            raise SendInFlightError(max(1.0, remaining_ms / 1000))
        try:
            send()
        except BaseException:
            # Graph did not accept it (or we cannot know): let the retry send it.
            self._redis.delete(key)
            raise
        self._redis.set(key, _DONE, ex=self._done_ttl)
        return True
