"""The Groq calls the pipelines make, through the official SDK, with errors classified for the task layer."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import groq

from workers.clients.groq_errors import classify_groq_error
from workers.clients.rate_limit import RateLimited, RateLimiter, Reservation, sequence_chars
from workers.errors import LooperaError, PermanentError, TransientError
from workers.text.languages import language_code

# Rough sizes for budgeting before a call; the real figures from the answer replace them (RateLimiter.settle).
CHARS_PER_TOKEN = 3.5
EXPECTED_COMPLETION_TOKENS = 256
# Groq bills every transcription as at least 10 s; WhatsApp voice notes are Opus at about 16 kbit/s or more,
# so bytes / 2000 over-estimates the duration (the safe side) until the transcript reports it.
MIN_BILLED_AUDIO_SECONDS = 10.0
AUDIO_BYTES_PER_SECOND = 2000


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment of a `verbose_json` transcription with Whisper's confidence in it
    (https://console.groq.com/docs/speech-to-text#understanding-metadata-fields): `no_speech_prob` 0..1,
    `avg_logprob` <= 0 (None when the answer did not carry them)."""

    text: str
    start: float
    end: float
    no_speech_prob: float | None
    avg_logprob: float | None


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str
    language: str  # ISO 639-1, "" when unknown
    duration: float | None
    segments: tuple[Segment, ...] = ()


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def parse_segments(raw: Any) -> tuple[Segment, ...]:
    """The `segments` of a verbose_json answer; anything malformed is skipped, never raised."""
    if not isinstance(raw, list):
        return ()
    return tuple(
        Segment(
            str(item.get("text") or ""),
            _number(item.get("start")) or 0.0,
            _number(item.get("end")) or 0.0,
            _number(item.get("no_speech_prob")),
            _number(item.get("avg_logprob")),
        )
        for item in raw
        if isinstance(item, dict)
    )


class GroqClient:
    def __init__(self, api_key: str, base_url: str, timeout: float, limiter: RateLimiter | None = None) -> None:
        # max_retries=0: our task layer owns retries (shared rate limits, Retry-After, deadlines).
        self._client = groq.Groq(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)
        # Every call takes from the model's shared budget first (None only in unit tests without Redis).
        self._limiter = limiter

    def _reserve(self, kind: str, model: str, conversation: str = "", **costs: float) -> Reservation | None:
        """Raises RateLimited (a deferral) when the model's budget, the conversation's fair share of it or a 429
        cooldown says "not now"."""
        return self._limiter.acquire(kind, model, conversation, **costs) if self._limiter is not None else None

    def _settle(self, reservation: Reservation | None, dimension: str, actual: float | None) -> None:
        if self._limiter is not None and reservation is not None and actual:
            self._limiter.settle(reservation, dimension, actual)

    def _failed(self, exc: groq.GroqError, model: str) -> LooperaError:
        error = classify_groq_error(exc, model)
        if self._limiter is not None and isinstance(error, TransientError) and error.reason == "groq_rate_limited":
            # Honour retry-after for every worker, not just this one (1 s when Groq gave no figure), and make it
            # a deferral: waiting for a rate limit is not a failed attempt.
            wait = error.retry_after or 1.0
            self._limiter.cool_down(model, wait)
            return RateLimited(model, "429", wait, reason=error.reason)
        return error

    def close(self) -> None:
        self._client.close()

    def chat(
        self,
        model: str,
        messages: list[dict[str, Any]],
        max_completion_tokens: int,
        reasoning_effort: str = "",
        conversation: str = "",
    ) -> str:
        """The model's answer. `conversation` (who it is for) gets a fair share of the model's budget."""
        extra: dict[str, Any] = {}
        if reasoning_effort:
            extra["reasoning_effort"] = reasoning_effort
        limiter_kind = self._limiter.kind_for_chat(model) if self._limiter is not None else "chat"
        prompt_tokens = sequence_chars([m.get("content") for m in messages]) / CHARS_PER_TOKEN
        reservation = self._reserve(
            limiter_kind,
            model,
            conversation,
            tokens=prompt_tokens + min(max_completion_tokens, EXPECTED_COMPLETION_TOKENS),
        )
        try:
            completion = self._client.chat.completions.create(
                model=model,
                messages=messages,  # type: ignore[arg-type]
                max_completion_tokens=max_completion_tokens,
                **extra,
            )
        except groq.GroqError as exc:
            raise self._failed(exc, model) from exc
        self._settle(reservation, "tokens", completion.usage.total_tokens if completion.usage else None)
        content = completion.choices[0].message.content if completion.choices else None
        if not content or not content.strip():
            raise PermanentError("groq_empty_reply", f"model={model}")
        return content.strip()

    def transcribe(
        self,
        model: str,
        audio: bytes,
        filename: str = "voice.ogg",
        seconds: float | None = None,
        conversation: str = "",
    ) -> Transcript:
        # Groq decides the format from the filename extension: bare bytes are rejected.
        estimate = seconds if seconds is not None else len(audio) / AUDIO_BYTES_PER_SECOND
        reservation = self._reserve(
            "transcription", model, conversation, audio_seconds=max(MIN_BILLED_AUDIO_SECONDS, estimate)
        )
        try:
            result = self._client.audio.transcriptions.create(
                file=(filename, audio), model=model, response_format="verbose_json"
            )
        except groq.GroqError as exc:
            raise self._failed(exc, model) from exc
        language = getattr(result, "language", "") or ""
        duration = getattr(result, "duration", None)
        if duration:
            self._settle(reservation, "audio_seconds", max(MIN_BILLED_AUDIO_SECONDS, float(duration)))
        return Transcript(
            result.text.strip(),
            language_code(str(language)),
            float(duration) if duration else None,
            parse_segments(getattr(result, "segments", None)),
        )

    def speak(self, model: str, voice: str, text: str) -> bytes:
        self._reserve("speech", model, tokens=math.ceil(len(text) / CHARS_PER_TOKEN))
        try:
            response = self._client.audio.speech.create(model=model, voice=voice, input=text, response_format="wav")
        except groq.GroqError as exc:
            raise self._failed(exc, model) from exc
        return response.read()
