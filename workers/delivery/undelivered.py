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

from shared.ledger import conversation_state_key

UNDELIVERED_PREFIX = "lp:undelivered:"
# Set in the conversation's state hash while answers are kept, so the job's claim (which reads that hash anyway)
# tells the worker whether to look: no round trip per message for a store that is almost always empty.
KEPT_FIELD = "kept_answers"
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
        pipe.hset(conversation_state_key(conversation), KEPT_FIELD, b"1")
        pipe.execute()

    def kept(self, conversation: str) -> list[str]:
        items: list[Any] = self._redis.lrange(self.key(conversation), 0, -1)
        return [str(orjson.loads(item)["text"]) for item in items]

    def drop(self, conversation: str) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(self.key(conversation))
        pipe.hdel(conversation_state_key(conversation), KEPT_FIELD)
        pipe.execute()
