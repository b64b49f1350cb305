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
    # SHA-1 because the ledger's claim script counts a message in the same window, and Lua has `redis.sha1hex` only;
    # a name, not a secret (the message part is already a keyed ref).
    return hashlib.sha1(value.encode(), usedforsecurity=False).hexdigest()[:16]


def window_keys(conversation: str) -> list[str]:
    """The user's window log and "please slow down" marker (named by a hash: conversation ids carry numbers)."""
    user = USER_LIMIT_PREFIX + _hash(conversation)
    return [f"{user}:log", f"{user}:notice"]


class UserRateLimit:
    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self._script = client.register_script(lua_source(ScriptName.USER_MESSAGE_WINDOW))
        self._release = client.register_script(lua_source(ScriptName.USER_WINDOW_RELEASE))
        self.limit = settings.user_messages_per_window
        self.window_seconds = settings.user_rate_window_seconds

    def admit(self, conversation: str, message_id: str) -> UserAdmission:
        """Count `message_id` against its user's window. Idempotent per message while it is in the window."""
        if self.limit <= 0:
            return UserAdmission.ANSWER
        args: list[str | int] = [_hash(message_id), self.limit, int(self.window_seconds * 1_000_000)]
        return _ADMISSION[ScriptResult(int(self._script(keys=window_keys(conversation), args=args)))]

    def release(self, conversation: str, message_id: str) -> None:
        """Take `message_id` back out of its user's window (and its notice, if it held it): the ledger's claim
        counted it, and it turned out not to go to a model."""
        self._release(keys=window_keys(conversation), args=[_hash(message_id)])
