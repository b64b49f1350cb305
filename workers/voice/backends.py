"""Text-to-speech backends behind one interface: text + voice -> PCM audio with its sample rate (`WavAudio`).

Each backend also says how long a request may be (`max_chars`): Orpheus refuses more than 200 characters; the
OpenAI-compatible endpoint takes sentences packed up to OPENAI_TTS_MAX_CHARS (short requests run concurrently, so
the reply is spoken sooner); Piper takes whole replies (starting the engine costs more than a sentence does).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Protocol

from workers.clients.groq import GroqClient
from workers.clients.openai_speech import OpenAISpeechClient, SpeechFormat
from workers.clients.piper import PiperEngine
from workers.context import WorkerContext
from workers.errors import PermanentError
from workers.media.wav import WavAudio, parse_wav
from workers.voice.routing import Backend, TTSRoute

# https://console.groq.com/docs/text-to-speech: "input" takes at most 200 characters.
ORPHEUS_MAX_CHARS = 200
_PCM = 1


class SpeechBackend(Protocol):
    """Speaks one request's text. Raises LooperaError subclasses (RateLimited for a deferral) or WavError when
    the backend's audio cannot be read."""

    @property
    def label(self) -> str:
        """`backend:model` (or `piper:voice`) for logs and rate-limit messages; no user data."""
        ...

    @property
    def max_chars(self) -> int: ...

    def synthesize(self, text: str, voice: str) -> WavAudio: ...


def pcm16_mono(frames: bytes, sample_rate: int) -> WavAudio:
    """Raw signed 16-bit little-endian mono samples as audio with a format header."""
    fmt = struct.pack("<HHIIHH", _PCM, 1, sample_rate, sample_rate * 2, 2, 16)
    return WavAudio(fmt, frames[: len(frames) - len(frames) % 2])


@dataclass(frozen=True, slots=True)
class GroqOrpheus:
    """Groq's Orpheus models (https://console.groq.com/docs/text-to-speech): WAV answers, shared Groq budgets."""

    client: GroqClient
    model: str

    @property
    def label(self) -> str:
        return f"groq:{self.model}"

    @property
    def max_chars(self) -> int:
        return ORPHEUS_MAX_CHARS

    def synthesize(self, text: str, voice: str) -> WavAudio:
        return parse_wav(self.client.speak(self.model, voice, text))


@dataclass(frozen=True, slots=True)
class OpenAICompatible:
    client: OpenAISpeechClient
    model: str
    response_format: SpeechFormat
    sample_rate: int  # of `pcm` answers (WAV answers carry their own)
    chars: int

    @property
    def label(self) -> str:
        return f"openai:{self.model}"

    @property
    def max_chars(self) -> int:
        return self.chars

    def synthesize(self, text: str, voice: str) -> WavAudio:
        audio = self.client.speak(self.model, voice, text, self.response_format)
        return parse_wav(audio) if self.response_format == "wav" else pcm16_mono(audio, self.sample_rate)


@dataclass(frozen=True, slots=True)
class PiperLocal:
    engine: PiperEngine
    chars: int

    @property
    def label(self) -> str:
        return "piper"

    @property
    def max_chars(self) -> int:
        return self.chars

    def synthesize(self, text: str, voice: str) -> WavAudio:
        frames, rate = self.engine.speak(voice, text)
        return pcm16_mono(frames, rate)


def backend_for(ctx: WorkerContext, route: TTSRoute) -> SpeechBackend:
    """The backend that speaks `route`. Raises PermanentError (ops alert) when its endpoint is not configured,
    which the worker's start-up check normally rules out."""
    settings = ctx.settings
    if route.backend is Backend.GROQ:
        return GroqOrpheus(ctx.groq, route.model)
    if route.backend is Backend.OPENAI:
        if ctx.openai_speech is None:
            raise PermanentError("tts_not_configured", "an openai route needs OPENAI_TTS_BASE_URL", ops_alert=True)
        return OpenAICompatible(
            ctx.openai_speech,
            route.model,
            settings.openai_tts_response_format,
            settings.openai_tts_sample_rate,
            settings.openai_tts_max_chars,
        )
    if ctx.piper is None:
        raise PermanentError("tts_not_configured", "a piper route needs the Piper engine", ops_alert=True)
    return PiperLocal(ctx.piper, settings.piper_max_chars)
