"""A per-user limit on messages that go to a model: at most N per rolling window, shared by every worker.

One user sending hundreds of messages a minute would otherwise hold the shared Groq budget for everyone
(issue 16). Messages over the limit are not sent to a model; the first of them in a window gets one "please slow
down" (`workers/pipelines/flood.py` decides what the user sees). The state is one sorted set per user (admitted
messages by time) and one marker per window, named by hashes: conversation ids carry phone numbers.
"""

from __future__ import annotations

import hashlib
from enum import IntEnum
from pathlib import Path

import redis

from shared.config import Settings

USER_LIMIT_PREFIX = "lp:ul:"
_SCRIPT = (Path(__file__).parent / "lua" / "user_window.lua").read_text(encoding="utf-8")


class UserAdmission(IntEnum):
    """What `user_window.lua` answers."""

    QUIET = 0  # over the limit: not answered, the window's notice went out already
    ANSWER = 1
    SLOW_DOWN = 2  # over the limit: not answered; this message carries the window's "please slow down"


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:16]


class UserRateLimit:
    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self._script = client.register_script(_SCRIPT)
        self.limit = settings.user_messages_per_window
        self.window_seconds = settings.user_rate_window_seconds

    def admit(self, conversation: str, message_id: str) -> UserAdmission:
        """Count `message_id` against its user's window. Idempotent per message while it is in the window."""
        if self.limit <= 0:
            return UserAdmission.ANSWER
        user = _hash(conversation)
        keys = [f"{USER_LIMIT_PREFIX}{user}:log", f"{USER_LIMIT_PREFIX}{user}:notice"]
        args: list[str | int] = [_hash(message_id), self.limit, int(self.window_seconds * 1_000_000)]
        return UserAdmission(int(self._script(keys=keys, args=args)))
