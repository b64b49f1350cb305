"""Per-message voice state (each chunk's audio, the encoded note, the uploaded media id) behind one small interface,
so a retried job neither re-synthesises nor re-uploads, and the storage can move without touching the pipeline.

Today each entry is its own short-TTL Redis key. The message id is never part of a key in clear (a wamid encodes
the sender's phone number): keys carry a keyed BLAKE2b digest of it instead.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

import redis

VOICE_PREFIX = "lp:voice:"
AUDIO_TTL_SECONDS = 3600  # chunks and the note: long enough for every retry of one job
MEDIA_TTL_SECONDS = 24 * 3600  # uploaded media lives 30 days at Meta; a day covers every retry


class VoiceCache(Protocol):
    """Named entries of one message's voice reply: `wav:<n>:<digest>`, `ogg`, `media`."""

    def get(self, name: str) -> bytes | None: ...

    def put(self, name: str, value: bytes, ttl_seconds: int = AUDIO_TTL_SECONDS) -> None: ...

    def drop(self, *names: str) -> None: ...


def chunk_name(index: int, backend: str, voice: str, text: str) -> str:
    """A chunk's entry name: a retry after a change of voice or wording must not reuse the old audio."""
    digest = hashlib.blake2b(f"{backend}\x00{voice}\x00{text}".encode(), digest_size=8).hexdigest()
    return f"wav:{index}:{digest}"


def voice_cache_prefix(message_id: str, secret: str) -> str:
    """The key prefix of one message's voice reply entries (`lp:voice:<keyed digest>:`)."""
    key = hashlib.sha256(b"loopera-voice-cache\x00" + secret.encode()).digest()
    digest = hashlib.blake2b(message_id.encode(), key=key, digest_size=16).hexdigest()
    return f"{VOICE_PREFIX}{digest}:"


class RedisVoiceCache:
    def __init__(self, client: redis.Redis, message_id: str, secret: str) -> None:
        self._redis = client
        self._prefix = voice_cache_prefix(message_id, secret)

    def get(self, name: str) -> bytes | None:
        value = self._redis.get(self._prefix + name)
        return value if isinstance(value, bytes) else None

    def put(self, name: str, value: bytes, ttl_seconds: int = AUDIO_TTL_SECONDS) -> None:
        self._redis.set(self._prefix + name, value, ex=ttl_seconds)

    def drop(self, *names: str) -> None:
        if names:
            self._redis.delete(*(self._prefix + name for name in names))
