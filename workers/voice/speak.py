"""Turn a reply into an uploaded WhatsApp voice note, or say precisely why not (the caller then sends text).

The reply's language picks a route (`workers.voice.routing`), the route a backend (`workers.voice.backends`). The
text is cut into that backend's request size, the chunks are synthesised concurrently and streamed, in order, into
ffmpeg while later ones are still being synthesised (`workers.voice.encoder`). Every expensive step is cached per
inbound message (`workers.voice.cache`), so a retried job neither re-synthesises (Orpheus allows 100 requests a day
on the free tier) nor re-uploads: each chunk's audio, then the encoded note, then the media id.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import closing
from typing import TypeVar

from shared.config import Settings
from shared.jobs import InboundJob
from shared.logging import correlation_id, get_logger
from workers.clients.rate_limit import RateLimited
from workers.context import WorkerContext
from workers.errors import LooperaError, PermanentError, TransientError
from workers.media.transcode import TranscodeError
from workers.media.wav import WavAudio, WavError
from workers.voice.backends import SpeechBackend, backend_for
from workers.voice.cache import MEDIA_TTL_SECONDS, RedisVoiceCache, VoiceCache, chunk_name
from workers.voice.chunking import chunk_for_tts, speakable_text
from workers.voice.encoder import StreamingVoiceEncoder
from workers.voice.loudness import normalise
from workers.voice.routing import TTSRoute, route_for
from workers.voice.synthesis import Chunk, synthesize_in_order

T = TypeVar("T")
VOICE_MIME = "audio/ogg"
log = get_logger("workers.voice")


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


def tts_voice_for(settings: Settings, language: str) -> TTSRoute | None:
    """The route that speaks replies in `language`, or None when they go out as text."""
    return route_for(settings, language)


def voice_cache(ctx: WorkerContext, job: InboundJob) -> VoiceCache:
    return RedisVoiceCache(ctx.redis, job.message_id, ctx.settings.whatsapp_token.get_secret_value())


def _twice(ctx: WorkerContext, call: Callable[[], T]) -> T:
    """Run `call`; a transient failure that asks for a short wait (a blip, a 5xx) is waited out once. A rate
    limit is never waited for inside a worker slot (see defer_if_short), and a long wait is not either."""
    for attempt in (1, 2):
        try:
            return call()
        except TransientError as exc:
            if _is_rate_limit(exc):
                raise
            wait = exc.retry_after if exc.retry_after is not None else 1.0
            if attempt == 2 or wait > ctx.settings.tts_max_wait_seconds:
                raise
            time.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def _is_rate_limit(exc: LooperaError) -> bool:
    return isinstance(exc, RateLimited) or exc.reason == "groq_rate_limited"


def defer_if_short(ctx: WorkerContext, exc: LooperaError, model: str) -> None:
    """A per-minute TTS limit (shared budget or the provider's 429) defers the whole job: the job runner re-queues
    it with a countdown and frees the worker slot, and the chunks synthesised so far are cached. A long wait (a
    daily quota) returns, and the caller sends the reply as text now instead of hours later."""
    if not isinstance(exc, TransientError) or not _is_rate_limit(exc):
        return
    wait = exc.retry_after if exc.retry_after is not None else 1.0
    if wait <= ctx.settings.tts_max_wait_seconds:
        raise exc if isinstance(exc, RateLimited) else RateLimited(model, "429", wait, reason=exc.reason)


def _chunks(backend: SpeechBackend, route: TTSRoute, text: str) -> list[Chunk]:
    pieces = chunk_for_tts(text, backend.max_chars)
    return [Chunk(piece, chunk_name(i, backend.label, route.voice, piece)) for i, piece in enumerate(pieces)]


def _encode(ctx: WorkerContext, cache: VoiceCache, reply: str, route: TTSRoute) -> bytes:
    settings = ctx.settings
    text = speakable_text(reply)
    if not text:
        raise SpeechFailedError("nothing_to_speak")
    if len(text) > settings.voice_reply_max_chars:
        raise SpeechFailedError("reply_too_long_for_voice", f"{len(text)} > {settings.voice_reply_max_chars} chars")
    try:
        backend = backend_for(ctx, route)
    except LooperaError as exc:
        raise SpeechFailedError.from_error(exc) from exc
    chunks = _chunks(backend, route, text)

    def speak(piece: str) -> WavAudio:
        # Levelled in the synthesis thread, concurrently with the other chunks; cached levelled.
        audio = backend.synthesize(piece, route.voice)
        return normalise(audio, settings.voice_loudness_lufs)

    audios = synthesize_in_order(
        speak,
        chunks,
        cache,
        settings.tts_concurrency,
        lambda call: _twice(ctx, call),
    )
    try:
        # closing(): however this block ends, queued requests are cancelled and in-flight ones cached at once.
        with (
            closing(audios),
            StreamingVoiceEncoder(
                settings.voice_bitrate,
                settings.ffmpeg_binary,
                settings.ffmpeg_timeout_seconds,
                settings.voice_opus_complexity,
            ) as encoder,
        ):
            for audio in audios:
                encoder.add(audio)
            note = encoder.finish()
    except LooperaError as exc:
        defer_if_short(ctx, exc, backend.label)
        raise SpeechFailedError.from_error(exc) from exc
    except WavError as exc:
        raise SpeechFailedError("tts_bad_audio", str(exc)) from exc
    except TranscodeError as exc:
        raise SpeechFailedError(exc.reason, exc.detail) from exc
    if len(note) > settings.voice_note_max_bytes:
        raise SpeechFailedError("voice_note_too_large", f"{len(note)} > {settings.voice_note_max_bytes} bytes")
    cache.drop(*(chunk.cache_name for chunk in chunks))
    return note


def prepare_voice_note(ctx: WorkerContext, job: InboundJob, reply: str, route: TTSRoute) -> str:
    """Synthesise, encode and upload the reply; returns the Graph media id. Raises SpeechFailedError, or
    RateLimited when a short per-minute limit defers the job."""
    cache = voice_cache(ctx, job)
    cached_media = cache.get("media")
    if cached_media is not None:
        return cached_media.decode()
    note = cache.get("ogg")
    if note is None:
        started = time.monotonic()
        note = _encode(ctx, cache, reply, route)
        cache.put("ogg", note)
        log.info(
            "voice.synthesised",
            correlation_id=correlation_id(job.message_id),
            backend=route.backend.value,
            language=route.language,
            seconds=round(time.monotonic() - started, 3),
            note_bytes=len(note),
        )
    try:
        media_id = _twice(ctx, lambda: ctx.graph.upload_media(note, VOICE_MIME, "reply.ogg"))
    except LooperaError as exc:
        raise SpeechFailedError.from_error(exc, cause="upload_failed") from exc
    cache.put("media", media_id.encode(), MEDIA_TTL_SECONDS)
    cache.drop("ogg")
    return media_id
