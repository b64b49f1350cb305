"""The bot's sent messages, by Meta's id: which message's ledger and which reply part each one was, so a user's
reaction to it (`workers/pipelines/feedback.py`) finds the answer it rates.

`lp:out:<keyed hash of the wamid>` -> `<ledger ref> <part>`, one string key per sent part, kept as long as the
ledgers (MESSAGE_LEDGER_TTL_SECONDS). The wamid is hashed like an inbound message id (shared.ledger.message_ref): a
wamid encodes the recipient's phone number.
"""

from __future__ import annotations

import redis

from shared.ledger import as_text, message_ref

OUTGOING_PREFIX = "lp:out:"


class OutgoingMessages:
    def __init__(self, client: redis.Redis, hashing_key: bytes, ttl_seconds: int) -> None:
        self._redis = client
        self._key = hashing_key
        self._ttl = ttl_seconds

    def key(self, wamid: str) -> str:
        return OUTGOING_PREFIX + message_ref(wamid, self._key)

    def record(self, wamid: str, ref: str, part: str) -> None:
        """Remember that `wamid` (Meta's id of a message we sent) is reply part `part` of ledger `ref`."""
        if wamid:
            self._redis.set(self.key(wamid), f"{ref} {part}", ex=self._ttl)

    def find(self, wamid: str) -> tuple[str, str] | None:
        """(ledger ref, part) of a message the bot sent, or None (not ours, or older than the ledgers)."""
        raw = self._redis.get(self.key(wamid))
        if raw is None:
            return None
        ref, _, part = as_text(raw).partition(" ")
        return (ref, part) if ref and part else None
