"""Synthesise a reply's chunks concurrently and hand them on in reply order, each cached as soon as it exists.

At most `concurrency` requests run at once (TTS_CONCURRENCY); every request still takes from the shared per-model
rate limit first, so a burst over the budget is refused there (RateLimited) rather than sent. When a chunk fails,
requests not yet started are cancelled, the ones in flight finish and are cached, and the first failure in reply
order is raised: a retried job then re-synthesises only what is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from workers.media.wav import WavAudio, parse_wav, write_wav
from workers.voice.cache import VoiceCache

# Runs one request, applying the caller's retry policy (e.g. wait out one short transient failure).
Attempt = Callable[[Callable[[], WavAudio]], WavAudio]


@dataclass(frozen=True, slots=True)
class Chunk:
    text: str
    cache_name: str  # its entry in the VoiceCache


def _once(call: Callable[[], WavAudio]) -> WavAudio:
    return call()


def synthesize_in_order(
    speak: Callable[[str], WavAudio],
    chunks: Sequence[Chunk],
    cache: VoiceCache,
    concurrency: int,
    attempt: Attempt = _once,
) -> Generator[WavAudio, None, None]:
    """Yield each chunk's audio in order, as soon as it and every chunk before it are ready.

    Raises whatever `speak` raises (LooperaError subclasses, WavError for unreadable audio)."""

    def one(chunk: Chunk) -> WavAudio:
        cached = cache.get(chunk.cache_name)
        if cached is not None:
            return parse_wav(cached)
        audio = attempt(lambda: speak(chunk.text))
        cache.put(chunk.cache_name, write_wav(audio.fmt, audio.frames))
        return audio

    if not chunks:
        return
    executor = ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(chunks))), thread_name_prefix="tts")
    futures: list[Future[WavAudio]] = [executor.submit(one, chunk) for chunk in chunks]
    try:
        for future in futures:
            yield future.result()
    finally:
        # On success every future is done; on a failure (or the consumer giving up) queued requests are cancelled
        # and the ones in flight finish, so what they produced is cached.
        executor.shutdown(wait=True, cancel_futures=True)
