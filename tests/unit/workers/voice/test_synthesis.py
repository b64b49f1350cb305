"""Concurrent synthesis: bounded, in reply order whatever order the answers come in, cached, and on a failure
nothing already paid for is lost."""

from __future__ import annotations

import threading
import time

import pytest

from tests.fakes.groq_fake import tone_wav
from workers.clients.rate_limit import RateLimited
from workers.errors import PermanentError
from workers.media.wav import WavAudio, parse_wav
from workers.voice.synthesis import Chunk, synthesize_in_order


class DictCache:
    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def get(self, name: str) -> bytes | None:
        return self.data.get(name)

    def put(self, name: str, value: bytes, ttl_seconds: int = 0) -> None:
        self.data[name] = value

    def drop(self, *names: str) -> None:
        for name in names:
            self.data.pop(name, None)


class Speaker:
    """Answers each text with a tone whose length encodes its position; later chunks answer first."""

    def __init__(self, fail: dict[str, Exception] | None = None) -> None:
        self.lock = threading.Lock()
        self.calls: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.fail = fail or {}

    def __call__(self, text: str) -> WavAudio:
        index = int(text.rsplit(maxsplit=1)[-1])
        with self.lock:
            self.calls.append(text)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(0.05 + 0.02 * (6 - index))  # the last chunk is the quickest
            if text in self.fail:
                raise self.fail[text]
            return parse_wav(tone_wav(0.1 * (index + 1), rate=8000))
        finally:
            with self.lock:
                self.in_flight -= 1


def chunks(count: int) -> list[Chunk]:
    return [Chunk(f"chunk {i}", f"wav:{i}") for i in range(count)]


def test_chunks_run_concurrently_up_to_the_bound_and_come_out_in_order() -> None:
    speaker, cache = Speaker(), DictCache()
    audios = list(synthesize_in_order(speaker, chunks(6), cache, concurrency=3))
    assert [round(audio.duration, 1) for audio in audios] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    assert speaker.max_in_flight == 3
    assert sorted(cache.data) == [f"wav:{i}" for i in range(6)]


def test_concurrency_one_is_sequential() -> None:
    speaker = Speaker()
    list(synthesize_in_order(speaker, chunks(3), DictCache(), concurrency=1))
    assert speaker.max_in_flight == 1
    assert speaker.calls == ["chunk 0", "chunk 1", "chunk 2"]


def test_cached_chunks_are_not_synthesised_again() -> None:
    cache = DictCache()
    list(synthesize_in_order(Speaker(), chunks(4), cache, concurrency=4))
    cache.drop("wav:2")
    again = Speaker()
    audios = list(synthesize_in_order(again, chunks(4), cache, concurrency=4))
    assert again.calls == ["chunk 2"]
    assert [round(audio.duration, 1) for audio in audios] == [0.1, 0.2, 0.3, 0.4]


def test_a_rate_limited_chunk_keeps_what_was_already_synthesised() -> None:
    """Chunk 1 is refused by the shared budget: the chunks in flight finish and are cached, queued ones are not
    started, and the deferral reaches the caller (which re-queues the job)."""
    speaker, cache = Speaker({"chunk 1": RateLimited("m", "requests", 20)}), DictCache()
    with pytest.raises(RateLimited):
        list(synthesize_in_order(speaker, chunks(6), cache, concurrency=2))
    assert "wav:0" in cache.data and "wav:1" not in cache.data
    assert len(speaker.calls) < 6  # the queue was cancelled
    assert set(cache.data) == {f"wav:{c.split()[-1]}" for c in speaker.calls if c != "chunk 1"}


def test_the_first_failure_in_reply_order_is_raised() -> None:
    speaker = Speaker({"chunk 0": PermanentError("groq_model_terms_required"), "chunk 2": RateLimited("m", "x", 1)})
    with pytest.raises(PermanentError):
        list(synthesize_in_order(speaker, chunks(3), DictCache(), concurrency=3))


def test_nothing_to_speak_yields_nothing() -> None:
    assert list(synthesize_in_order(Speaker(), [], DictCache(), concurrency=4)) == []
