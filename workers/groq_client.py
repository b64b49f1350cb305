"""The Groq calls the pipelines make, through the official SDK, with errors classified for the task layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import groq

from shared.errors import PermanentError
from workers.groq_errors import classify_groq_error
from workers.languages import language_code


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str
    language: str  # ISO 639-1, "" when unknown
    duration: float | None


class GroqClient:
    def __init__(self, api_key: str, base_url: str, timeout: float) -> None:
        # max_retries=0: our task layer owns retries (shared rate limits, Retry-After, deadlines).
        self._client = groq.Groq(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)

    def close(self) -> None:
        self._client.close()

    def chat(
        self,
        model: str,
        messages: list[dict[str, Any]],
        max_completion_tokens: int,
        reasoning_effort: str = "",
    ) -> str:
        extra: dict[str, Any] = {}
        if reasoning_effort:
            extra["reasoning_effort"] = reasoning_effort
        try:
            completion = self._client.chat.completions.create(
                model=model,
                messages=messages,  # type: ignore[arg-type]
                max_completion_tokens=max_completion_tokens,
                **extra,
            )
        except groq.GroqError as exc:
            raise classify_groq_error(exc, model) from exc
        content = completion.choices[0].message.content if completion.choices else None
        if not content or not content.strip():
            raise PermanentError("groq_empty_reply", f"model={model}")
        return content.strip()

    def transcribe(self, model: str, audio: bytes, filename: str = "voice.ogg") -> Transcript:
        # Groq decides the format from the filename extension: bare bytes are rejected.
        try:
            result = self._client.audio.transcriptions.create(
                file=(filename, audio), model=model, response_format="verbose_json"
            )
        except groq.GroqError as exc:
            raise classify_groq_error(exc, model) from exc
        language = getattr(result, "language", "") or ""
        duration = getattr(result, "duration", None)
        return Transcript(result.text.strip(), language_code(str(language)), float(duration) if duration else None)

    def speak(self, model: str, voice: str, text: str) -> bytes:
        try:
            response = self._client.audio.speech.create(model=model, voice=voice, input=text, response_format="wav")
        except groq.GroqError as exc:
            raise classify_groq_error(exc, model) from exc
        return response.read()
