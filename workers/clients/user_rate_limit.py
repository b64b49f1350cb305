"""A per-user limit on messages that go to a model: at most N per rolling window, shared by every worker.

One user sending hundreds of messages a minute would otherwise hold the shared Groq budget for everyone
(issue 16). Messages over the limit are not sent to a model; the first of them in a window gets one "please slow
down" (`workers/pipelines/flood.py` decides what the user sees; the script is
`shared/scripts/user_message_window.lua`). The state is one sorted set per user (admitted
messages by time) and one marker per window, named by hashes: conversation ids carry phone numbers.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum

import redis

from shared.config import Settings
from shared.redis_scripts import ScriptName, ScriptResult, lua_source

USER_LIMIT_PREFIX = "lp:ul:"


class UserAdmission(StrEnum):
    """What happens to one message (kept per message by the caller, so a redelivered job decides the same)."""

    ANSWER = "answer"
    SLOW_DOWN = "slow_down"  # over the limit: not answered; this message carries the window's "please slow down"
    QUIET = "quiet"  # over the limit: not answered, the window's notice went out already


_ADMISSION = {
    ScriptResult.USER_ANSWER: UserAdmission.ANSWER,
    ScriptResult.USER_SLOW_DOWN: UserAdmission.SLOW_DOWN,
    ScriptResult.USER_QUIET: UserAdmission.QUIET,
}


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:16]


class UserRateLimit:
    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self._script = client.register_script(lua_source(ScriptName.USER_MESSAGE_WINDOW))
        self.limit = settings.user_messages_per_window
        self.window_seconds = settings.user_rate_window_seconds

    def admit(self, conversation: str, message_id: str) -> UserAdmission:
        """Count `message_id` against its user's window. Idempotent per message while it is in the window."""
        if self.limit <= 0:
            return UserAdmission.ANSWER
        user = _hash(conversation)
        keys = [f"{USER_LIMIT_PREFIX}{user}:log", f"{USER_LIMIT_PREFIX}{user}:notice"]
        args: list[str | int] = [_hash(message_id), self.limit, int(self.window_seconds * 1_000_000)]
        return _ADMISSION[ScriptResult(int(self._script(keys=keys, args=args)))]
