"""A loopback OpenAI-compatible speech endpoint (`POST /v1/audio/speech`), the wire format of OpenAI's "Create
speech" (https://platform.openai.com/docs/api-reference/audio/createSpeech) that self-hosted TTS servers share."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.groq_fake import CallLog, tone_wav
from tests.fakes.server import Fault, FaultPlan, LoopbackServer

API_KEY = "sk-test-speech"
MAX_INPUT_CHARS = 4096  # OpenAI's documented limit for `input`
FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
PCM_RATE = 24000  # OpenAI's pcm: raw 16-bit little-endian mono at 24 kHz


def openai_error(status: int, message: str, type_: str = "invalid_request_error", code: str | None = None) -> Fault:
    return Fault(status, {"error": {"message": message, "type": type_, "param": None, "code": code}})


class OpenAISpeechFake:
    def __init__(self) -> None:
        self.faults = FaultPlan()
        self.calls: list[CallLog] = []
        self.seconds_per_char = 0.02
        # Seconds each request is held (a real endpoint takes hundreds of ms: overlapping calls become visible).
        self.delay = 0.0
        self.speech_audio: Callable[[str], bytes] = self._default_audio
        self._lock = threading.Lock()
        self._in_flight = 0
        self.max_in_flight = 0
        self.server = LoopbackServer(Starlette(routes=[Route("/v1/audio/speech", self._speech, methods=["POST"])]))
        self.url = self.server.url + "/v1"

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.max_in_flight = 0
        self.faults.clear()
        self.delay = 0.0
        self.speech_audio = self._default_audio

    def _default_audio(self, text: str) -> bytes:
        return tone_wav(max(0.3, len(text) * self.seconds_per_char), rate=PCM_RATE, frequency=330.0)

    def inputs(self) -> list[str]:
        with self._lock:
            return [call.body["input"] for call in self.calls]

    async def _speech(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return openai_error(401, "Incorrect API key provided", code="invalid_api_key").response()
        body: dict[str, Any] = await request.json()
        call = CallLog("audio/speech", str(body.get("model", "")), time.time(), body)
        with self._lock:
            self.calls.append(call)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            if fault := self.faults.take("speech"):
                return fault.response()
            return self._answer(body)
        finally:
            call.extra["answered_at"] = time.time()
            with self._lock:
                self._in_flight -= 1

    def _answer(self, body: dict[str, Any]) -> Response:
        text = body.get("input")
        if not body.get("model") or not body.get("voice"):
            return openai_error(400, "model and voice are required").response()
        if not isinstance(text, str) or not text or len(text) > MAX_INPUT_CHARS:
            return openai_error(400, f"input must be 1-{MAX_INPUT_CHARS} characters").response()
        response_format = body.get("response_format", "mp3")
        if response_format not in FORMATS:
            return openai_error(400, f"response_format must be one of {list(FORMATS)}").response()
        wav = self.speech_audio(text)
        if response_format == "pcm":
            return Response(wav[44:], media_type="audio/pcm")  # tone_wav's header is the canonical 44 bytes
        if response_format != "wav":
            return openai_error(400, "the fake speaks only wav and pcm").response()
        return Response(wav, media_type="audio/wav")
