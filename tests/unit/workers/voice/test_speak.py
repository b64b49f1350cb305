from __future__ import annotations

from typing import Any

import pytest

from shared.config import Settings
from shared.jobs import InboundJob
from tests.fakes.groq_fake import tone_wav
from workers.clients.rate_limit import RateLimited
from workers.errors import PermanentError, TransientError
from workers.voice.cache import RedisVoiceCache
from workers.voice.routing import Backend, TTSRoute
from workers.voice.speak import SpeechFailedError, _encode, defer_if_short, tts_voice_for

ROUTE = TTSRoute("en", Backend.GROQ, "autumn", "canopylabs/orpheus-v1-english")


def settings(**values: str) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_tts_voice_for_follows_the_routing_table() -> None:
    assert tts_voice_for(settings(), "en") == ROUTE
    assert tts_voice_for(settings(), "es") is None
    assert tts_voice_for(settings(tts_voices="es=piper:v"), "es") == TTSRoute("es", Backend.PIPER, "v")


class _Ctx:
    def __init__(self, s: Settings) -> None:
        self.settings = s


def test_a_short_tts_rate_limit_defers_the_job_instead_of_sleeping() -> None:
    ctx: Any = _Ctx(settings(tts_max_wait_seconds="10"))
    with pytest.raises(RateLimited) as raised:
        defer_if_short(ctx, TransientError("groq_rate_limited", "per minute", retry_after=3), "tts")
    assert raised.value.retry_after == 3
    with pytest.raises(RateLimited):
        defer_if_short(ctx, RateLimited("tts", "requests", 2.5), "tts")
    with pytest.raises(RateLimited):  # an OpenAI-compatible endpoint's 429 arrives as RateLimited
        defer_if_short(ctx, RateLimited("openai:tts-1", "429", 5, reason="tts_rate_limited"), "openai:tts-1")
    # A daily quota (hours) and anything that is not a rate limit return: the caller answers as text now.
    defer_if_short(ctx, TransientError("groq_rate_limited", "per day", retry_after=21600), "tts")
    defer_if_short(ctx, RateLimited("openai:tts-1", "429", 21600, reason="tts_rate_limited"), "openai:tts-1")
    defer_if_short(ctx, TransientError("groq_http_503", "down", retry_after=1), "tts")
    defer_if_short(ctx, PermanentError("groq_model_terms_required"), "tts")


class _MemoryRedis:
    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    def set(self, key: str, value: bytes, ex: int | None = None) -> None:
        self.data[key] = value

    def delete(self, *keys: str) -> None:
        for key in keys:
            self.data.pop(key, None)


class _SpeakingGroq:
    def __init__(self) -> None:
        self.inputs: list[str] = []

    def speak(self, model: str, voice: str, text: str) -> bytes:
        self.inputs.append(text)
        return tone_wav(1.0)


class _SpeechCtx:
    def __init__(self, s: Settings) -> None:
        self.settings = s
        self.redis = _MemoryRedis()
        self.groq = _SpeakingGroq()
        self.openai_speech = None
        self.piper = None


JOB = InboundJob(
    job_id="j",
    message_id="wamid.HBgLMTU1NTAxMDAwMDEVAgASGBQzQUI=",
    message_type="audio",
    conversation="c",
    phone_number_id="p",
    received_at=0.0,
    message={},
)


def _cache(ctx: _SpeechCtx) -> RedisVoiceCache:
    return RedisVoiceCache(ctx.redis, JOB.message_id, "test-secret")  # type: ignore[arg-type]


def test_a_note_over_the_inline_play_limit_is_not_sent_as_voice() -> None:
    """Real ffmpeg: the encoded note is larger than VOICE_NOTE_MAX_BYTES, so speaking fails and the caller answers
    with text (the 512 KB rule of WhatsApp's inline play button, here with a tiny limit)."""
    tiny = _SpeechCtx(settings(voice_note_max_bytes="200"))
    with pytest.raises(SpeechFailedError) as failed:
        _encode(tiny, _cache(tiny), "Hello there. This is a spoken answer.", ROUTE)  # type: ignore[arg-type]
    assert failed.value.cause == "voice_note_too_large"
    assert tiny.groq.inputs == ["Hello there. This is a spoken answer."]

    roomy = _SpeechCtx(settings(voice_note_max_bytes="524288"))
    note = _encode(roomy, _cache(roomy), "Hello there. This is a spoken answer.", ROUTE)  # type: ignore[arg-type]
    assert note.startswith(b"OggS") and 200 < len(note) <= 524288


def test_a_retry_reuses_cached_chunks_and_keys_never_carry_the_message_id() -> None:
    ctx = _SpeechCtx(settings(voice_note_max_bytes="200"))
    reply = "First sentence here. " * 8 + "Second part of the answer, spoken too."
    with pytest.raises(SpeechFailedError):
        _encode(ctx, _cache(ctx), reply, ROUTE)  # type: ignore[arg-type]
    spoken = list(ctx.groq.inputs)
    assert len(spoken) > 1  # more than one Orpheus request
    assert len(ctx.redis.data) == len(spoken)  # every chunk cached, since the note was never sent
    assert all(JOB.message_id not in key and "wamid" not in key for key in ctx.redis.data)

    ctx.settings = settings()
    note = _encode(ctx, _cache(ctx), reply, ROUTE)  # type: ignore[arg-type]
    assert note.startswith(b"OggS")
    assert ctx.groq.inputs == spoken  # the retry synthesised nothing again
    assert ctx.redis.data == {}  # and dropped the chunks once the note existed


def test_the_reply_is_not_spoken_when_its_backend_is_not_configured() -> None:
    ctx = _SpeechCtx(settings())
    route = TTSRoute("es", Backend.OPENAI, "alloy", "tts-1")
    with pytest.raises(SpeechFailedError) as failed:
        _encode(ctx, _cache(ctx), "Hola.", route)  # type: ignore[arg-type]
    assert failed.value.cause == "tts_not_configured" and failed.value.ops_alert
