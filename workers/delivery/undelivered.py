"""Answers that could not be sent (the customer service window had closed), kept for the user's next message.

`lp:undelivered:<conversation>`: a list of JSON `{"text", "at"}` (newest last, at most KEPT_ANSWERS), expiring
UNDELIVERED_TTL_SECONDS after the last one was kept. The next message of the conversation (which opens a new
window) sends them first, each once (send-once markers of that message), then drops the list.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import redis

UNDELIVERED_PREFIX = "lp:undelivered:"
KEPT_ANSWERS = 5  # a person away for days needs the last few answers, not a transcript


class UndeliveredAnswers:
    def __init__(self, client: redis.Redis, ttl_seconds: int) -> None:
        self._redis = client
        self._ttl = ttl_seconds

    @staticmethod
    def key(conversation: str) -> str:
        return UNDELIVERED_PREFIX + conversation

    def keep(self, conversation: str, text: str) -> None:
        key = self.key(conversation)
        pipe = self._redis.pipeline(transaction=True)
        pipe.rpush(key, orjson.dumps({"text": text, "at": time.time()}))
        pipe.ltrim(key, -KEPT_ANSWERS, -1)
        pipe.expire(key, self._ttl)
        pipe.execute()

    def kept(self, conversation: str) -> list[str]:
        items: list[Any] = self._redis.lrange(self.key(conversation), 0, -1)
        return [str(orjson.loads(item)["text"]) for item in items]

    def drop(self, conversation: str) -> None:
        self._redis.delete(self.key(conversation))
