"""Conversation memory: the last N messages per conversation in a Redis list, kept for 24 h after last use."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal, NotRequired, TypedDict, cast

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
    # The ledger ref of the message whose turn this is, and for an edit's turn the ref of the message it edited
    # (workers/pipelines/amendments.py finds a turn by them). Turns stored before refs existed have neither.
    ref: NotRequired[str]
    of: NotRequired[str]


def entry(role: Role, content: str, kind: TurnKind = "text", language: str = "") -> MemoryEntry:
    turn = MemoryEntry(role=role, content=content, kind=kind, ts=time.time())
    if language:
        turn["lang"] = language
    return turn


def turn_of(turn: MemoryEntry, ref: str) -> bool:
    """Whether `turn` belongs to message `ref`: stored by it, or by an edit of it."""
    return turn.get("ref") == ref or turn.get("of") == ref


def with_user_words(entries: list[MemoryEntry], ref: str, content: str) -> list[MemoryEntry]:
    """The turns with message `ref`'s user turn (or its edit's) now saying `content` (the user edited it)."""
    return [
        cast(MemoryEntry, {**turn, "content": content}) if turn["role"] == "user" and turn_of(turn, ref) else turn
        for turn in entries
    ]


def without_message(entries: list[MemoryEntry], ref: str) -> list[MemoryEntry]:
    """The turns without message `ref`'s turn (its user turn and our answer, and those of its edits)."""
    return [turn for turn in entries if not turn_of(turn, ref)]


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

    def rewrite(self, conversation: str, change: Callable[[list[MemoryEntry]], list[MemoryEntry]]) -> bool:
        """Apply `change` to the conversation's stored turns, atomically against concurrent appends (WATCH: a turn
        appended meanwhile makes it start over). Returns whether anything changed; an unchanged memory is not
        written (nor its lifetime refreshed)."""
        key = self.key(conversation)
        with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
                    raw = cast(list[bytes], pipe.lrange(key, 0, -1))
                    before: list[MemoryEntry] = [orjson.loads(item) for item in raw]
                    after = change(before)
                    if after == before:
                        pipe.unwatch()
                        return False
                    pipe.multi()
                    pipe.delete(key)
                    if after:
                        pipe.rpush(key, *(orjson.dumps(turn) for turn in after))
                        pipe.expire(key, self._ttl)
                    pipe.execute()
                    return True
                except redis.WatchError:
                    continue

    def clear(self, conversation: str) -> None:
        self._redis.delete(self.key(conversation))
