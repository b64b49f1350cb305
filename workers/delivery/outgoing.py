"""The bot's sent messages, by Meta's id: which message's ledger and which reply part each one was, so a user's
reaction to it (`workers/pipelines/feedback.py`) finds the answer it rates.

`lp:out:<keyed hash of the wamid>` -> `<ledger ref> <part>`, one string key per sent part, kept as long as the
ledgers (MESSAGE_LEDGER_TTL_SECONDS). The wamid is hashed like an inbound message id (shared.ledger.message_ref): a
wamid encodes the recipient's phone number.
"""

from __future__ import annotations

import redis

from shared.ledger import OUTGOING_PREFIX, as_text, outgoing_key

__all__ = ["OUTGOING_PREFIX", "OUTGOING_WRITE", "OutgoingMessages"]
# A ledger pending-write field that starts with this is one of these keys, not a ledger field
# (shared/scripts/pending_writes.lua).
OUTGOING_WRITE = ">"


class OutgoingMessages:
    def __init__(self, client: redis.Redis, hashing_key: bytes, ttl_seconds: int) -> None:
        self._redis = client
        self._key = hashing_key
        self._ttl = ttl_seconds

    def key(self, wamid: str) -> str:
        return outgoing_key(wamid, self._key)

    def pending_write(self, wamid: str, ref: str, part: str) -> tuple[str, str]:
        """The ledger pending write (field, value) that records `wamid` (Meta's id of a message we sent) as reply
        part `part` of ledger `ref`, written by the ledger's next script."""
        return OUTGOING_WRITE + self.key(wamid), f"{self._ttl} {ref} {part}"

    def find(self, wamid: str) -> tuple[str, str] | None:
        """(ledger ref, part) of a message the bot sent, or None (not ours, or older than the ledgers)."""
        raw = self._redis.get(self.key(wamid))
        if raw is None:
            return None
        ref, _, part = as_text(raw).partition(" ")
        return (ref, part) if ref and part else None
