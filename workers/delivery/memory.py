"""Conversation memory: the last N messages per conversation in a Redis list, kept for 24 h after last use."""

from __future__ import annotations

import time
from typing import Literal, NotRequired, TypedDict

import orjson
import redis

from shared.redis_scripts import ScriptName, ScriptResult, lua_source

MEMORY_PREFIX = "lp:mem:"

Role = Literal["user", "assistant"]
TurnKind = Literal["text", "voice", "image", "other"]


class MemoryEntry(TypedDict):
    role: Role
    content: str
    kind: TurnKind
    ts: float
    # User turns: the conversation's language (ISO 639-1) once this turn was heard; see
    # workers/pipelines/conversation_language.py.
    lang: NotRequired[str]


def entry(role: Role, content: str, kind: TurnKind = "text", language: str = "") -> MemoryEntry:
    turn = MemoryEntry(role=role, content=content, kind=kind, ts=time.time())
    if language:
        turn["lang"] = language
    return turn


class ConversationMemory:
    def __init__(self, client: redis.Redis, max_messages: int = 20, ttl_seconds: int = 24 * 3600) -> None:
        self._redis = client
        self._max = max_messages
        self._ttl = ttl_seconds
        self._append_once = client.register_script(lua_source(ScriptName.MEMORY_APPEND_ONCE))

    @staticmethod
    def key(conversation: str) -> str:
        return MEMORY_PREFIX + conversation

    def load(self, conversation: str) -> list[MemoryEntry]:
        key = self.key(conversation)
        pipe = self._redis.pipeline(transaction=True)
        pipe.lrange(key, -self._max, -1)
        pipe.expire(key, self._ttl)  # reading is use: refresh the 24 h window
        raw, _ = pipe.execute()
        return [orjson.loads(item) for item in raw]

    def append(self, conversation: str, *entries: MemoryEntry, once_for: str = "") -> bool:
        """Append atomically (one script), so two concurrent writers never lose each other's turns.

        `once_for` (a message id) makes the append idempotent: a redelivered job does not store its turn twice.
        Returns False when that turn was already stored."""
        if not entries:
            return False
        once_key = f"lp:mem-once:{once_for}" if once_for else ""
        args: list[int | bytes] = [self._max, self._ttl, 8 * 24 * 3600, *(orjson.dumps(e) for e in entries)]
        # memory_append_once.lua, KEYS: memory list, once-marker; ARGV: max, ttl_s, once_ttl_s, entries...
        result = ScriptResult(int(self._append_once(keys=[self.key(conversation), once_key], args=args)))
        return result is ScriptResult.APPENDED

    def clear(self, conversation: str) -> None:
        self._redis.delete(self.key(conversation))
