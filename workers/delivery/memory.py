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

    def append(
        self,
        conversation: str,
        *entries: MemoryEntry,
        ledger: str = "",
        token: str = "",
        ledger_writes: dict[str, str] | None = None,
    ) -> bool:
        """Append atomically (one script), so two concurrent writers never lose each other's turns.

        `ledger` (a message's ledger key, see workers/delivery/ledger.py) makes the append idempotent: a redelivered
        job does not store its turn twice; `ledger_writes` go into that ledger in the same script. Returns False
        when that turn was already stored."""
        if not entries:
            return False
        writes = ledger_writes or {}
        args: list[int | str | bytes] = [self._max, self._ttl, int(time.time() * 1000), token, len(writes)]
        args += [item for pair in writes.items() for item in pair]
        args += [orjson.dumps(e) for e in entries]
        # memory_append_once.lua, KEYS: memory list, ledger; ARGV: max, ttl_s, now_ms, token, writes..., entries...
        result = ScriptResult(int(self._append_once(keys=[self.key(conversation), ledger], args=args)))
        return result is ScriptResult.APPENDED

    def clear(self, conversation: str) -> None:
        self._redis.delete(self.key(conversation))
