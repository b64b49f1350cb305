"""The store of answers the user did not get (layout and ways in: shared/undelivered.py), as the worker uses it:
keep one the customer service window stopped, read them back when the user writes again, drop them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from shared.ledger import conversation_state_key
from shared.undelivered import KEPT_ANSWERS, KEPT_FIELD, undelivered_key


@dataclass(frozen=True, slots=True)
class KeptAnswer:
    """`text` the answer, `asked` the start of the user's message it answered ("" unknown: kept by an older
    release), `at` when it was kept (epoch seconds)."""

    text: str
    asked: str = ""
    at: float = 0.0


class UndeliveredAnswers:
    def __init__(self, client: redis.Redis, ttl_seconds: int) -> None:
        self._redis = client
        self._ttl = ttl_seconds

    @staticmethod
    def key(conversation: str) -> str:
        return undelivered_key(conversation)

    def keep(self, conversation: str, text: str, asked: str = "", ref: str = "") -> None:
        key = self.key(conversation)
        pipe = self._redis.pipeline(transaction=True)
        pipe.rpush(key, orjson.dumps({"text": text, "asked": asked, "at": time.time(), "ref": ref}))
        pipe.ltrim(key, -KEPT_ANSWERS, -1)
        pipe.expire(key, self._ttl)
        pipe.hset(conversation_state_key(conversation), KEPT_FIELD, b"1")
        pipe.execute()

    def kept(self, conversation: str) -> list[KeptAnswer]:
        """Oldest first; one per answer (an answer kept twice, e.g. by both ways in, is listed once)."""
        items: list[Any] = self._redis.lrange(self.key(conversation), 0, -1)
        answers: dict[str, KeptAnswer] = {}
        for index, raw in enumerate(items):
            item = orjson.loads(raw)
            answer = KeptAnswer(str(item["text"]), str(item.get("asked") or ""), float(item.get("at") or 0))
            answers.setdefault(str(item.get("ref") or index), answer)
        return list(answers.values())

    def drop(self, conversation: str) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(self.key(conversation))
        pipe.hdel(conversation_state_key(conversation), KEPT_FIELD)
        pipe.execute()
