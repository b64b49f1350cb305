"""Groq errors mapped to retry / give up, from Groq's error reference
(https://console.groq.com/docs/errors)."""

from __future__ import annotations

from typing import Any

import groq

from workers.errors import LooperaError, PermanentError, TransientError

TERMS_URL = "https://console.groq.com/playground?model={model}"
OPS_CODES = frozenset({"invalid_api_key", "model_not_found", "model_decommissioned", "model_terms_required"})


class GroqPermanentError(PermanentError):
    def __init__(self, reason: str, detail: str = "", ops_alert: bool = False, model: str = "") -> None:
        super().__init__(reason, detail, ops_alert=ops_alert)
        self.model = model


class RequestTooLargeError(GroqPermanentError):
    """The request does not fit the model: HTTP 413 "Request too large ... tokens per minute" (a single request
    larger than the TPM limit; `type: tokens`, `code: rate_limit_exceeded`) or 400 `context_length_exceeded`.
    Not a rate limit to wait out: the same request fails the same way later. The caller sends a smaller one."""


def _error_code(body: Any) -> str:
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("code"):
            return str(error["code"])
    return ""


def _retry_after(exc: groq.APIStatusError) -> float | None:
    value = exc.response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def classify_groq_error(exc: groq.GroqError, model: str) -> LooperaError:
    if isinstance(exc, groq.APIConnectionError):  # includes APITimeoutError
        return TransientError("groq_transport", type(exc).__name__)
    if not isinstance(exc, groq.APIStatusError):
        return PermanentError("groq_client", type(exc).__name__)
    status, code = exc.status_code, _error_code(exc.body)
    detail = f"HTTP {status} {code} model={model}"
    if status == 413 or code == "context_length_exceeded":
        return RequestTooLargeError(f"groq_request_too_large_{status}", detail, model=model)
    if status == 429:
        return TransientError("groq_rate_limited", detail, retry_after=_retry_after(exc))
    if status == 498 or status >= 500:
        return TransientError(f"groq_http_{status}", detail, retry_after=_retry_after(exc))
    if code == "model_terms_required":
        detail += f"; an org admin must accept the terms at {TERMS_URL.format(model=model.replace('/', '%2F'))}"
    reason = f"groq_{code}" if code else f"groq_http_{status}"
    return GroqPermanentError(reason, detail, ops_alert=code in OPS_CODES or status == 401, model=model)
