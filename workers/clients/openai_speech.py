"""Any OpenAI-compatible text-to-speech endpoint: `POST {base_url}/audio/speech`, one per worker process.

The wire format is OpenAI's "Create speech" (https://platform.openai.com/docs/api-reference/audio/createSpeech):
a JSON body {model, voice, input, response_format} answered with the audio bytes; errors are JSON
{"error": {"message", "type", "code"}} with the HTTP status saying what kind. Self-hosted servers (Kokoro-FastAPI,
openedai-speech, LocalAI, ...) speak the same format, so one client serves all of them.

Only the lossless formats are asked for: `wav`, or `pcm` (raw 16-bit little-endian mono samples; OpenAI's are at
24 kHz). The speech is then compressed once, to Opus, instead of twice.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx

from workers.clients.rate_limit import RateLimited, RateLimiter
from workers.errors import LooperaError, PermanentError, TransientError

SpeechFormat = Literal["wav", "pcm"]
LIMITER_KIND = "openai_speech"
# Statuses an operator must fix: a bad key (401), no access (403), an unknown model or a wrong base URL (404).
_OPS_STATUSES = frozenset({401, 403, 404})


class OpenAISpeechClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        timeout: float = 30.0,
        limiter: RateLimiter | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._url = f"{base_url.rstrip('/')}/audio/speech"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=5.0), headers=headers, transport=transport, follow_redirects=False
        )
        self._limiter = limiter

    def close(self) -> None:
        self._http.close()

    @staticmethod
    def limiter_model(model: str) -> str:
        """The shared budget's key: apart from Groq's models, even if a server reuses a Groq model's name."""
        return f"openai:{model}"

    def speak(self, model: str, voice: str, text: str, response_format: SpeechFormat = "wav") -> bytes:
        """The audio bytes of `text` spoken by `voice`. Raises RateLimited (a deferral: the shared budget or a 429),
        TransientError (timeouts, 5xx) or PermanentError (anything else; `ops_alert` for 401/403/404)."""
        budget_model = self.limiter_model(model)
        if self._limiter is not None:
            self._limiter.acquire(LIMITER_KIND, budget_model)
        body = {"model": model, "voice": voice, "input": text, "response_format": response_format}
        try:
            response = self._http.post(self._url, json=body)
        except httpx.HTTPError as exc:  # includes timeouts
            raise TransientError("tts_transport", type(exc).__name__) from exc
        if response.status_code >= 400:
            raise self._failed(response, model)
        if not response.content:
            raise TransientError("tts_empty_audio", f"model={model}")
        return response.content

    def _failed(self, response: httpx.Response, model: str) -> LooperaError:
        status = response.status_code
        code = _error_code(response)
        detail = f"HTTP {status} {code} model={model}".replace("  ", " ")
        if status == 429:
            wait = _retry_after(response) or 1.0
            if self._limiter is not None:
                self._limiter.cool_down(self.limiter_model(model), wait)
            return RateLimited(model, "429", wait, reason="tts_rate_limited")
        if status >= 500 or status == 408:
            return TransientError(f"tts_http_{status}", detail, retry_after=_retry_after(response))
        return PermanentError(f"tts_http_{status}", detail, ops_alert=status in _OPS_STATUSES)


def _error_code(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("code") or error.get("type") or "")
    return ""


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
