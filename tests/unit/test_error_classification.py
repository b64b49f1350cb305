from __future__ import annotations

import groq
import httpx
import pytest

from workers.clients.graph_errors import classify_graph_response
from workers.clients.groq_errors import RequestTooLargeError, classify_groq_error
from workers.errors import PermanentError, TransientError


def graph_response(status: int, code: int | None, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"error": {"message": "m", "type": "OAuthException", "code": code}} if code is not None else {}
    return httpx.Response(status, json=body, headers=headers, request=httpx.Request("POST", "https://graph/x"))


@pytest.mark.parametrize("code", [1, 2, 4, 17, 341, 80007, 130429, 131000, 131016, 131057, 131056])
def test_transient_graph_codes(code: int) -> None:
    assert isinstance(classify_graph_response(graph_response(400, code)), TransientError)


@pytest.mark.parametrize("code", [190, 131047, 131026, 131051, 131053, 100])
def test_permanent_graph_codes(code: int) -> None:
    error = classify_graph_response(graph_response(400, code))
    assert isinstance(error, PermanentError)
    assert error.ops_alert is (code == 190)


def test_graph_5xx_without_body_is_transient_and_pair_limit_backs_off() -> None:
    assert isinstance(classify_graph_response(graph_response(502, None)), TransientError)
    pair = classify_graph_response(graph_response(400, 131056))
    assert isinstance(pair, TransientError) and pair.retry_after and pair.retry_after >= 4


def groq_status_error(status: int, code: str, headers: dict[str, str] | None = None) -> groq.APIStatusError:
    request = httpx.Request("POST", "http://groq/openai/v1/chat/completions")
    body = {"error": {"message": "m", "type": "t", "code": code}}
    response = httpx.Response(status, json=body, headers=headers, request=request)
    error_class = {
        400: groq.BadRequestError,
        401: groq.AuthenticationError,
        404: groq.NotFoundError,
        429: groq.RateLimitError,
    }.get(status, groq.APIStatusError)
    if status >= 500:
        error_class = groq.InternalServerError
    return error_class("m", response=response, body=body)


@pytest.mark.parametrize(("status", "code"), [(429, "rate_limit_exceeded"), (498, "capacity_exceeded"), (503, "")])
def test_transient_groq(status: int, code: str) -> None:
    assert isinstance(classify_groq_error(groq_status_error(status, code), "m"), TransientError)


def test_groq_429_keeps_retry_after() -> None:
    error = classify_groq_error(groq_status_error(429, "rate_limit_exceeded", {"retry-after": "7"}), "m")
    assert isinstance(error, TransientError) and error.retry_after == 7.0


@pytest.mark.parametrize(
    ("status", "code", "ops"),
    [
        (400, "model_decommissioned", True),
        (404, "model_not_found", True),
        (401, "invalid_api_key", True),
        (400, "model_terms_required", True),
        (413, "rate_limit_exceeded", False),
        (400, "context_length_exceeded", False),
    ],
)
def test_permanent_groq(status: int, code: str, ops: bool) -> None:
    error = classify_groq_error(groq_status_error(status, code), "canopylabs/orpheus-v1-english")
    assert isinstance(error, PermanentError) and error.ops_alert is ops
    if code == "model_terms_required":
        assert "console.groq.com/playground?model=canopylabs%2Forpheus-v1-english" in error.detail


@pytest.mark.parametrize(
    ("status", "code", "too_large"),
    [
        (413, "rate_limit_exceeded", True),  # "Request too large ... on tokens per minute (TPM)"
        (400, "context_length_exceeded", True),
        (429, "rate_limit_exceeded", False),  # a real rate limit: wait it out
        (400, "invalid_request", False),
    ],
)
def test_requests_that_do_not_fit_the_model_are_their_own_type(status: int, code: str, too_large: bool) -> None:
    assert isinstance(classify_groq_error(groq_status_error(status, code), "m"), RequestTooLargeError) is too_large


def test_groq_connection_error_is_transient() -> None:
    error = groq.APIConnectionError(request=httpx.Request("POST", "http://groq"))
    assert isinstance(classify_groq_error(error, "m"), TransientError)
