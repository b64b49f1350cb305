"""Turn a reply into an uploaded WhatsApp voice note, or say precisely why not (the caller then sends text).

Every expensive step is cached per inbound message, so a retried job neither re-synthesises (Orpheus allows
100 requests a day on the free tier) nor re-uploads: the WAV of each chunk, then the encoded note, then the
media id.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from shared.config import Settings
from shared.jobs import InboundJob
from workers.clients.rate_limit import RateLimited
from workers.context import WorkerContext
from workers.errors import LooperaError, PermanentError, TransientError
from workers.media.transcode import TranscodeError, transcode_to_voice_note
from workers.media.wav import WavError, join_wavs
from workers.voice.chunking import TTS_MAX_CHARS, chunk_for_tts, speakable_text

T = TypeVar("T")
VOICE_PREFIX = "lp:voice:"
_AUDIO_TTL = 3600
_MEDIA_TTL = 24 * 3600  # uploaded media lives 30 days at Meta; a day covers every retry
VOICE_MIME = "audio/ogg"


class SpeechFailedError(Exception):
    """Speaking failed for a known cause; the user gets the reply as text instead."""

    def __init__(self, cause: str, detail: str = "", ops_alert: bool = False) -> None:
        super().__init__(f"{cause}: {detail}" if detail else cause)
        self.cause = cause
        self.detail = detail
        self.ops_alert = ops_alert

    @classmethod
    def from_error(cls, exc: LooperaError, cause: str = "") -> SpeechFailedError:
        ops = isinstance(exc, PermanentError) and exc.ops_alert
        detail = f"{exc.reason}: {exc.detail}" if cause else exc.detail
        return cls(cause or exc.reason, detail, ops)


def tts_voice_for(settings: Settings, language: str) -> tuple[str, str] | None:
    """(model, voice) when replies in `language` are spoken, else None."""
    if language not in settings.voice_reply_language_set:
        return None
    if language == "ar":
        # Orpheus English cannot speak Arabic; without the Arabic model Arabic gets text.
        return (settings.tts_arabic_model, settings.tts_arabic_voice) if settings.tts_arabic_model else None
    return settings.tts_model, settings.tts_voice


def _key(job: InboundJob, what: str) -> str:
    return f"{VOICE_PREFIX}{job.message_id}:{what}"


def _twice(ctx: WorkerContext, call: Callable[[], T]) -> T:
    """Run `call`; a transient failure that asks for a short wait (a per-minute 429, a blip) is waited out once.
    A long wait (a daily limit) is not: the reply then goes out as text now rather than hours later."""
    for attempt in (1, 2):
        try:
            return call()
        except TransientError as exc:
            if _is_rate_limit(exc):
                raise  # never wait for a rate limit inside a worker slot: see defer_if_short
            wait = exc.retry_after if exc.retry_after is not None else 1.0
            if attempt == 2 or wait > ctx.settings.tts_max_wait_seconds:
                raise
            time.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def _is_rate_limit(exc: LooperaError) -> bool:
    return isinstance(exc, RateLimited) or exc.reason == "groq_rate_limited"


def defer_if_short(ctx: WorkerContext, exc: LooperaError, model: str) -> None:
    """A per-minute TTS limit (shared budget or Groq's 429) defers the whole job: the job runner re-queues it with
    a countdown and frees the worker slot, and the chunks synthesised so far are cached. A long wait (a daily
    quota) returns, and the caller sends the reply as text now instead of hours later."""
    if not isinstance(exc, TransientError) or not _is_rate_limit(exc):
        return
    wait = exc.retry_after if exc.retry_after is not None else 1.0
    if wait <= ctx.settings.tts_max_wait_seconds:
        raise exc if isinstance(exc, RateLimited) else RateLimited(model, "429", wait, reason=exc.reason)


def synthesize(ctx: WorkerContext, job: InboundJob, model: str, voice: str, chunks: list[str]) -> list[bytes]:
    wavs: list[bytes] = []
    for index, chunk in enumerate(chunks):
        key = _key(job, f"wav:{index}")
        cached = ctx.redis.get(key)
        if isinstance(cached, bytes):
            wavs.append(cached)
            continue
        wav = _twice(ctx, partial(ctx.groq.speak, model, voice, chunk))
        ctx.redis.set(key, wav, ex=_AUDIO_TTL)
        wavs.append(wav)
    return wavs


def _encode(ctx: WorkerContext, job: InboundJob, reply: str, model: str, voice: str) -> bytes:
    settings = ctx.settings
    text = speakable_text(reply)
    if not text:
        raise SpeechFailedError("nothing_to_speak")
    if len(text) > settings.voice_reply_max_chars:
        raise SpeechFailedError("reply_too_long_for_voice", f"{len(text)} > {settings.voice_reply_max_chars} chars")
    chunks = chunk_for_tts(text, TTS_MAX_CHARS)
    try:
        wavs = synthesize(ctx, job, model, voice, chunks)
    except LooperaError as exc:
        defer_if_short(ctx, exc, model)
        raise SpeechFailedError.from_error(exc) from exc
    try:
        note = transcode_to_voice_note(
            join_wavs(wavs), settings.voice_bitrate, settings.ffmpeg_binary, settings.ffmpeg_timeout_seconds
        )
    except WavError as exc:
        raise SpeechFailedError("tts_bad_audio", str(exc)) from exc
    except TranscodeError as exc:
        raise SpeechFailedError(exc.reason, exc.detail) from exc
    if len(note) > settings.voice_note_max_bytes:
        raise SpeechFailedError("voice_note_too_large", f"{len(note)} > {settings.voice_note_max_bytes} bytes")
    ctx.redis.delete(*(_key(job, f"wav:{i}") for i in range(len(chunks))))
    return note


def prepare_voice_note(ctx: WorkerContext, job: InboundJob, reply: str, model: str, voice: str) -> str:
    """Synthesise, encode and upload the reply; returns the Graph media id. Raises SpeechFailedError."""
    media_key, note_key = _key(job, "media"), _key(job, "ogg")
    cached_media = ctx.redis.get(media_key)
    if isinstance(cached_media, bytes):
        return cached_media.decode()
    cached_note = ctx.redis.get(note_key)
    if isinstance(cached_note, bytes):
        note = cached_note
    else:
        note = _encode(ctx, job, reply, model, voice)
        ctx.redis.set(note_key, note, ex=_AUDIO_TTL)
    try:
        media_id = _twice(ctx, lambda: ctx.graph.upload_media(note, VOICE_MIME, "reply.ogg"))
    except LooperaError as exc:
        raise SpeechFailedError.from_error(exc, cause="upload_failed") from exc
    ctx.redis.set(media_key, media_id.encode(), ex=_MEDIA_TTL)
    ctx.redis.delete(note_key)
    return media_id
