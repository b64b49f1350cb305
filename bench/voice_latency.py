"""Voice reply latency: signed webhook -> API -> Redis -> Celery audio worker -> Whisper -> chat -> TTS -> ffmpeg
-> upload -> voice note at the Graph fake, with loopback fakes that hold each call for a realistic time (Whisper
400 ms, chat 800 ms, each TTS request 600 ms, the upload 150 ms; all settable). Answers of 1, 3 and 6 Orpheus
chunks, synthesised one after another (TTS_CONCURRENCY=1, the baseline) and concurrently (one request per chunk),
then concurrently without loudness levelling (its cost), in the same run.

Per stage, from the fakes' own clocks: ingest (webhook -> Whisper called: ack, queue, claim, download), Whisper,
chat, TTS (first request -> last answer), encode (last TTS answer -> upload starts: joining, ffmpeg, loudness),
upload, send (-> the voice note at the Graph fake), and the total. "overhead" is the total minus what the fakes
were told to take (Whisper + chat + one TTS request + upload). Goals: a 6-chunk answer's TTS stage at most 1.5x one
TTS request; the overhead at most 300 ms.

    uv run python -m bench.voice_latency [--runs 3] [--whisper 0.4] [--chat 0.8] [--tts 0.6] [--upload 0.15]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response

from bench import common
from bench.stack import stack
from tests.fakes.graph_fake import GraphFake, Recorded
from tests.fakes.groq_fake import tone_wav
from tests.fakes.server import wait_for
from tests.webhooks import MEDIA_FIXTURES, encode, message_body, signed_headers

# About 180 characters each: one Orpheus request (<= 200) per sentence, so N sentences are N chunks.
SENTENCE = (
    "Designing Data-Intensive Applications by Martin Kleppmann explains replication, partitioning, transactions "
    "and consensus with clear diagrams and real systems as examples number {n}."
)
SPEECH_SECONDS_PER_CHAR = 1 / 15  # about 15 characters a second, a natural speaking rate
CHUNK_COUNTS = (1, 3, 6)
STAGES = ("ingest", "whisper", "chat", "tts", "encode", "upload", "send", "total", "overhead")


class TimedGraph(GraphFake):
    """Notes when each upload started and ended and when each voice note was sent (wall clock)."""

    def __init__(self) -> None:
        self._times = threading.Lock()
        self.uploads_at: list[tuple[float, float]] = []
        self.voice_sent_at: dict[str, float] = {}
        super().__init__()  # (GraphFake.__init__ does not call reset; the fields above exist either way)

    def reset(self) -> None:
        super().reset()
        with self._times:
            self.uploads_at.clear()
            self.voice_sent_at.clear()

    async def _upload(self, request: Request) -> Response:
        started = time.time()
        response = await super()._upload(request)
        with self._times:
            self.uploads_at.append((started, time.time()))
        return response

    def _record(self, item: Recorded) -> None:
        body = item.json if isinstance(item.json, dict) else {}
        if body.get("type") == "audio":
            with self._times:
                self.voice_sent_at[str(body.get("to"))] = time.time()
        super()._record(item)


@dataclass
class Holds:
    whisper: float
    chat: float
    tts: float
    upload: float


def _reply(chunks: int) -> str:
    return " ".join(SENTENCE.format(n=n) for n in range(chunks))


def _one_note(api: str, graph: TimedGraph, groq: Any, chunks: int, user: str) -> dict[str, float]:
    graph.reset()
    groq.reset()
    graph.upload_delay, groq.transcription_delay, groq.chat_delay, groq.speech_delay = HOLDS_NOW
    groq.speech_audio = SPEECH_AUDIO.__getitem__
    groq.chat_reply = lambda request: _reply(chunks)
    media_id = f"media-{uuid.uuid4().hex[:8]}"
    graph.add_media(media_id, VOICE_NOTE, "audio/ogg")
    message = {
        "from": user,
        "id": f"wamid.{uuid.uuid4().hex}",
        "timestamp": str(int(time.time())),
        "type": "audio",
        "audio": {"mime_type": "audio/ogg; codecs=opus", "sha256": "abc", "id": media_id, "voice": True},
    }
    raw = encode(message_body([message], sender=user))
    sent = time.time()
    response = httpx.post(f"{api}/webhook", content=raw, headers=signed_headers(raw), timeout=10)
    assert response.status_code == 200, response.text
    wait_for(lambda: user in graph.voice_sent_at, timeout=60, what="the voice note")
    (stt,) = groq.calls_to("audio/transcriptions")
    (chat,) = groq.calls_to("chat/completions")
    tts = groq.calls_to("audio/speech")
    assert len(tts) == chunks, f"{len(tts)} TTS requests for {chunks} chunks"
    upload_start, upload_end = graph.uploads_at[-1]
    done = graph.voice_sent_at[user]
    stages = {
        "ingest": stt.at - sent,
        "whisper": stt.answered_at - stt.at,
        "chat": chat.answered_at - chat.at,
        "tts": max(c.answered_at for c in tts) - min(c.at for c in tts),
        "encode": upload_start - max(c.answered_at for c in tts),
        "upload": upload_end - upload_start,
        "send": done - upload_end,
        "total": done - sent,
    }
    stages["overhead"] = stages["total"] - sum(HOLDS_NOW)
    return stages


# Set by run(): the holds, the WhatsApp-style voice note the user sends, and each chunk's speech (made once, so
# generating it does not compete with the measured path).
HOLDS_NOW: tuple[float, float, float, float] = (0.15, 0.4, 0.8, 0.6)
VOICE_NOTE = (MEDIA_FIXTURES / "voice-en.ogg").read_bytes()
SPEECH_AUDIO: dict[str, bytes] = {}


def run(runs: int, holds: Holds, chunk_counts: tuple[int, ...] = CHUNK_COUNTS) -> list[list[object]]:
    global HOLDS_NOW  # noqa: PLW0603 - one benchmark at a time
    HOLDS_NOW = (holds.upload, holds.whisper, holds.chat, holds.tts)
    for n in range(max(chunk_counts)):
        text = SENTENCE.format(n=n)
        SPEECH_AUDIO[text] = tone_wav(len(text) * SPEECH_SECONDS_PER_CHAR)
    facts = common.machine()
    facts["holds"] = (
        f"Whisper {holds.whisper * 1000:.0f} ms, chat {holds.chat * 1000:.0f} ms, each TTS request "
        f"{holds.tts * 1000:.0f} ms, upload {holds.upload * 1000:.0f} ms; speech {1 / SPEECH_SECONDS_PER_CHAR:.0f} "
        "characters a second (a 6-chunk answer is about 70 s of audio)"
    )
    facts["services"] = "1 API process, 1 audio worker (prefork, 1 process), redis-server; fakes in this process"
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory(prefix="bench-voice-") as tmp, stack(Path(tmp)) as s:
        graph = TimedGraph()
        graph.server.start()
        env = s.env | {
            "GRAPH_API_URL": graph.url,
            "VOICE_REPLY_MAX_CHARS": "2000",
            "TYPING_REFRESH_SECONDS": "20",
            # Paid-plan-sized budgets: the limiter runs (its Redis round trip is part of the path) but never defers.
            "TTS_RPM": "10000",
            "TTS_TPM": "10000000",
            "CHAT_RPM": "10000",
            "CHAT_TPM": "10000000",
            "STT_RPM": "10000",
            "STT_AUDIO_SECONDS_PER_HOUR": "10000000",
        }
        try:
            common.print_header("Voice reply latency", facts)
            most = max(chunk_counts)
            modes = (("sequential", 1, "-16"), ("concurrent", most, "-16"), ("concurrent, levelling off", most, "0"))
            for mode, concurrency, lufs in modes:
                s.env = env | {"TTS_CONCURRENCY": str(concurrency), "VOICE_LOUDNESS_LUFS": lufs}
                s.start_worker("--pool", "audio", "--concurrency", "1", name=f"voice-{len(rows)}")
                _one_note(s.api.url, graph, s.groq, 1, f"1555099000{len(rows):02d}")  # warm the worker process
                for chunks in chunk_counts:
                    users = [f"155509{len(rows):02d}{chunks}{r:03d}" for r in range(runs)]
                    samples = [_one_note(s.api.url, graph, s.groq, chunks, user) for user in users]
                    medians = {k: statistics.median(sample[k] for sample in samples) * 1000 for k in STAGES}
                    rows.append([mode, chunks, *(f"{medians[k]:.0f}" for k in STAGES)])
                s.stop_workers()
        finally:
            graph.server.stop()
    common.print_table(["TTS", "chunks", *(f"{k} ms" for k in STAGES)], rows)
    one_tts = holds.tts * 1000
    for row in rows:
        if row[0] == "concurrent" and row[1] == max(chunk_counts):
            tts, overhead = float(str(row[5])), float(str(row[-1]))
            print(f"{row[1]}-chunk TTS stage: {tts:.0f} ms = {tts / one_tts:.2f}x one request (goal <= 1.5x)")
            print(f"{row[1]}-chunk overhead beyond the fakes' holds: {overhead:.0f} ms (goal <= 300 ms)")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="voice notes per case (medians reported)")
    parser.add_argument("--whisper", type=float, default=0.4, help="seconds the Whisper fake holds each call")
    parser.add_argument("--chat", type=float, default=0.8, help="seconds the chat fake holds each call")
    parser.add_argument("--tts", type=float, default=0.6, help="seconds the TTS fake holds each request")
    parser.add_argument("--upload", type=float, default=0.15, help="seconds the Graph fake holds each upload")
    args = parser.parse_args()
    run(args.runs, Holds(args.whisper, args.chat, args.tts, args.upload))


if __name__ == "__main__":
    main()
