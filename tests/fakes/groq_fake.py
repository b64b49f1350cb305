"""A loopback Groq API (OpenAI-compatible paths under /openai/v1) for the real `groq` SDK to talk to."""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import itertools
import math
import struct
import threading
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes.server import Fault, FaultPlan, LoopbackServer

API_KEY = "gsk_test_key"
AUDIO_EXTENSIONS = ("flac", "mp3", "mp4", "mpeg", "mpga", "m4a", "ogg", "opus", "wav", "webm")
TTS_MAX_CHARS = 200
# https://console.groq.com/docs/vision: base64 images up to 4 MB, JPEG/PNG/GIF/WebP, at most 5 images per request.
IMAGE_BASE64_MAX = 4 * 1024 * 1024
IMAGE_MAX_COUNT = 5
IMAGE_MAGIC = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG": "image/png", b"GIF8": "image/gif", b"RIFF": "image/webp"}
VISION_MODELS = frozenset({"qwen/qwen3.8-27b"})


def groq_error(status: int, code: str, message: str = "error", type_: str = "invalid_request_error", **headers: str):
    return Fault(status, {"error": {"message": message, "type": type_, "code": code}}, dict(headers))


def tone_wav(seconds: float, rate: int = 24000, frequency: float = 220.0) -> bytes:
    """Real RIFF/WAVE audio (16-bit mono), so ffmpeg has something genuine to transcode."""
    frames = int(seconds * rate)
    samples = (int(8000 * math.sin(2 * math.pi * frequency * i / rate)) for i in range(frames))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(struct.pack(f"<{frames}h", *samples))
    return buffer.getvalue()


def content_chars(body: dict[str, Any]) -> int:
    """Characters of text in a chat request (string contents and text parts)."""
    total = 0
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            total += sum(len(str(p.get("text", ""))) for p in content if isinstance(p, dict))
    return total


def request_too_large(model: str, requested: int, limit: int = 8000) -> Fault:
    """Groq's answer to one request larger than the tokens-per-minute limit (max_completion_tokens counts too):
    HTTP 413, `type: tokens`, `code: rate_limit_exceeded`, no retry-after (waiting does not help)."""
    message = (
        f"Request too large for model `{model}` in organization `org_fake` service tier `on_demand` on tokens per "
        f"minute (TPM): Limit {limit}, Requested {requested}, please reduce your message size and try again. Need "
        "more tokens? Upgrade to Dev Tier today at https://console.groq.com/settings/billing"
    )
    return groq_error(413, "rate_limit_exceeded", message, type_="tokens")


def context_length_exceeded() -> Fault:
    """Groq's answer to a request longer than the model's context window: HTTP 400 `context_length_exceeded`."""
    fault = groq_error(
        400,
        "context_length_exceeded",
        "Please reduce the length of the messages or completion.",
        "invalid_request_error",
    )
    fault.body["error"]["param"] = "messages"
    return fault


def default_chat_reply(request: dict[str, Any]) -> str:
    last = request["messages"][-1]["content"]
    if isinstance(last, list):
        last = " ".join(part.get("text", "") for part in last if part.get("type") == "text")
    return f"You said: {last}"


@dataclass
class ImagePart:
    """One image a chat request carried, decoded, with the text parts of the same message."""

    url: str
    mime_type: str
    data: bytes
    texts: list[str]


def image_parts(body: dict[str, Any]) -> list[ImagePart]:
    found: list[ImagePart] = []
    for message in body.get("messages", []):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        texts = [p.get("text", "") for p in content if p.get("type") == "text"]
        for part in content:
            if part.get("type") != "image_url":
                continue
            url = part.get("image_url", {}).get("url", "")
            header, _, payload = url.partition(",")
            data = b""
            if header.startswith("data:") and header.endswith(";base64"):
                try:
                    data = base64.b64decode(payload, validate=True)
                except (binascii.Error, ValueError):
                    data = b""
            found.append(ImagePart(url, header[5:].removesuffix(";base64"), data, texts))
    return found


def image_problem(body: dict[str, Any]) -> str | None:
    """Why Groq would refuse this request's images (None if it would take them)."""
    images = image_parts(body)
    if not images:
        return None
    if body.get("model") not in VISION_MODELS:
        return f"model `{body.get('model')}` does not support image input"
    if len(images) > IMAGE_MAX_COUNT:
        return f"too many images: at most {IMAGE_MAX_COUNT}"
    for image in images:
        if image.url.startswith("data:"):
            if len(image.url.partition(",")[2]) > IMAGE_BASE64_MAX:
                return "base64 image exceeds the 4MB limit"
            if not image.data or not any(image.data.startswith(magic) for magic in IMAGE_MAGIC):
                return "invalid image data"
    return None


@dataclass
class Transcription:
    """What /audio/transcriptions answers. verbose_json carries one segment with Whisper's confidence figures
    (defaults: clear speech); `verbose_json` set answers exactly that body instead (a recorded answer)."""

    text: str
    language: str = "English"
    duration: float = 4.0
    no_speech_prob: float = 0.012
    avg_logprob: float = -0.21
    verbose_json: dict[str, Any] | None = None

    def verbose(self, request_id: str) -> dict[str, Any]:
        if self.verbose_json is not None:
            return self.verbose_json
        return {
            "task": "transcribe",
            "language": self.language,
            "duration": self.duration,
            "text": f" {self.text}",
            "segments": [
                {
                    "id": 0,
                    "seek": 0,
                    "start": 0.0,
                    "end": self.duration,
                    "text": f" {self.text}",
                    "tokens": [50364, 50414],
                    "temperature": 0.0,
                    "avg_logprob": self.avg_logprob,
                    "compression_ratio": 1.1,
                    "no_speech_prob": self.no_speech_prob,
                }
            ],
            "x_groq": {"id": request_id},
        }


@dataclass
class CallLog:
    path: str
    model: str
    at: float
    body: Any = None
    file_name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    answered_at: float = 0.0  # when the fake answered (after any delay it was told to hold the call)


class GroqFake:
    def __init__(self) -> None:
        self.faults = FaultPlan()
        self.calls: list[CallLog] = []
        self.chat_reply: Callable[[dict[str, Any]], str] = default_chat_reply
        self.transcription = Transcription("Hello! Can you recommend a good book about distributed systems?")
        self.models = [
            "openai/gpt-oss-120b",
            "whisper-large-v3-turbo",
            "canopylabs/orpheus-v1-english",
            "qwen/qwen3.8-27b",
        ]
        self.seconds_per_char = 0.02
        # What /audio/speech answers with (a real WAV by default); tests swap it to inject bad audio.
        self.speech_audio: Callable[[str], bytes] = self._default_speech_audio
        # Set to hold chat requests open (e.g. to SIGKILL the worker mid-request); cleared = pass.
        self.hold_chat = threading.Event()
        self.release_chat = threading.Event()
        # Seconds each chat answer takes (a real model is not instant: overlapping calls become observable);
        # likewise each transcription and each speech request.
        self.chat_delay = 0.0
        self.transcription_delay = 0.0
        self.speech_delay = 0.0
        # Chat requests with more characters of text than this get Groq's 413 "Request too large" (TPM), or its
        # 400 context_length_exceeded; None = no limit.
        self.chat_limit_chars: int | None = None
        self.context_limit_chars: int | None = None
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        base = "/openai/v1"
        app = Starlette(
            routes=[
                Route(base + "/chat/completions", self._chat, methods=["POST"]),
                Route(base + "/audio/transcriptions", self._transcribe, methods=["POST"]),
                Route(base + "/audio/speech", self._speech, methods=["POST"]),
                Route(base + "/models", self._models, methods=["GET"]),
            ]
        )
        self.server = LoopbackServer(app)
        self.url = self.server.url

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
        self.faults.clear()
        self.chat_reply = default_chat_reply
        self.transcription = Transcription("Hello! Can you recommend a good book about distributed systems?")
        self.hold_chat.clear()
        self.release_chat.clear()
        self.speech_audio = self._default_speech_audio
        self.chat_delay = 0.0
        self.transcription_delay = 0.0
        self.speech_delay = 0.0
        self.chat_limit_chars = None
        self.context_limit_chars = None

    def _default_speech_audio(self, text: str) -> bytes:
        return tone_wav(max(0.3, len(text) * self.seconds_per_char))

    def image_requests(self) -> list[tuple[CallLog, list[ImagePart]]]:
        """Chat requests that carried images, with their decoded image parts."""
        return [(c, parts) for c in self.calls_to("chat/completions") if (parts := image_parts(c.body))]

    def calls_to(self, endpoint: str) -> list[CallLog]:
        with self._lock:
            return [c for c in self.calls if c.path.endswith(endpoint)]

    def _log(self, call: CallLog) -> None:
        with self._lock:
            self.calls.append(call)

    def _unauthorized(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return groq_error(401, "invalid_api_key", "Invalid API Key").response()
        return None

    async def _chat(self, request: Request) -> Response:
        if denied := self._unauthorized(request):
            return denied
        body = await request.json()
        call = CallLog("chat/completions", body.get("model", ""), time.time(), body)
        self._log(call)
        if self.hold_chat.is_set():
            await asyncio.to_thread(self.release_chat.wait, 60)
        if self.chat_delay:
            await asyncio.sleep(self.chat_delay)
        call.extra["answered_at"] = call.answered_at = time.time()
        if fault := self.faults.take("chat"):
            return fault.response()
        if body.get("n", 1) != 1:
            return groq_error(400, "invalid_request", "'n' : number must be at most 1").response()
        if problem := image_problem(body):
            return groq_error(400, "invalid_request", problem).response()
        size = content_chars(body)
        if self.chat_limit_chars is not None and size > self.chat_limit_chars:
            requested = size // 4 + int(body.get("max_completion_tokens") or 0)
            return request_too_large(str(body.get("model")), requested).response()
        if self.context_limit_chars is not None and size > self.context_limit_chars:
            return context_length_exceeded().response()
        content = self.chat_reply(body)
        return JSONResponse(
            {
                "id": f"chatcmpl-{next(self._ids)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model"),
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
            },
            headers={"x-ratelimit-limit-requests": "1000", "x-ratelimit-remaining-requests": "999"},
        )

    async def _transcribe(self, request: Request) -> Response:
        if denied := self._unauthorized(request):
            return denied
        form = await request.form()
        upload = form.get("file")
        name = getattr(upload, "filename", None)
        model = str(form.get("model", ""))
        data = await upload.read() if upload is not None and not isinstance(upload, str) else b""
        await form.close()  # uploads are spooled to temporary files; close them (filterwarnings=error)
        call = CallLog(
            "audio/transcriptions",
            model,
            time.time(),
            file_name=name,
            extra={"size": len(data), "response_format": form.get("response_format")},
        )
        self._log(call)
        if self.transcription_delay:
            await asyncio.sleep(self.transcription_delay)
        call.answered_at = time.time()
        if fault := self.faults.take("transcriptions"):
            return fault.response()
        if not name or "." not in name or name.rsplit(".", 1)[1].lower() not in AUDIO_EXTENSIONS:
            return groq_error(
                400, "unsupported_audio_format", f"file must be one of the following types: {list(AUDIO_EXTENSIONS)}"
            ).response()
        result = self.transcription
        if form.get("response_format") == "text":
            return PlainTextResponse(result.text)
        if form.get("response_format") == "verbose_json":
            return JSONResponse(result.verbose(f"req_{next(self._ids)}"))
        return JSONResponse({"text": result.text})

    async def _speech(self, request: Request) -> Response:
        if denied := self._unauthorized(request):
            return denied
        body = await request.json()
        call = CallLog("audio/speech", body.get("model", ""), time.time(), body)
        self._log(call)
        if self.speech_delay:
            await asyncio.sleep(self.speech_delay)
        call.answered_at = time.time()
        if fault := self.faults.take("speech"):
            return fault.response()
        text = body.get("input", "")
        if body.get("response_format", "wav") != "wav":
            return groq_error(400, "invalid_request", "response_format must be one of [wav]").response()
        if not text or len(text) > TTS_MAX_CHARS:
            return groq_error(400, "invalid_request", f"input must be 1-{TTS_MAX_CHARS} characters").response()
        return Response(self.speech_audio(text), media_type="audio/wav")

    async def _models(self, request: Request) -> Response:
        if denied := self._unauthorized(request):
            return denied
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {"id": m, "object": "model", "created": 1700000000, "owned_by": "x", "active": True}
                    for m in self.models
                ],
            }
        )
