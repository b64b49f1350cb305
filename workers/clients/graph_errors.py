"""Graph API errors mapped to retry / give up, from Meta's error code table
(https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes)."""

from __future__ import annotations

import httpx

from workers.errors import PermanentError, SendingChannelError, TransientError

TRANSIENT_CODES = frozenset({1, 2, 4, 17, 341, 80007, 130429, 131000, 131016, 131057, 131056, 131048})
# Codes an operator must act on: tokens and permissions.
OPS_CODES = frozenset({0, 190, 3, 10, *range(200, 300), 133010})


class GraphError(SendingChannelError, PermanentError):
    def __init__(self, reason: str, detail: str = "", code: int | None = None, ops_alert: bool = False) -> None:
        super().__init__(reason, detail, ops_alert=ops_alert)
        self.code = code


class GraphTransientError(SendingChannelError, TransientError):
    """`maybe_delivered`: the request was written and its answer lost (a read timeout, a connection reset), so Meta
    may have accepted the message: resending at once could deliver it twice."""

    def __init__(
        self,
        reason: str,
        detail: str = "",
        code: int | None = None,
        retry_after: float | None = None,
        maybe_delivered: bool = False,
    ):
        super().__init__(reason, detail, retry_after=retry_after)
        self.code = code
        self.maybe_delivered = maybe_delivered


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def classify_graph_response(response: httpx.Response) -> GraphError | GraphTransientError:
    """Key on Meta's `error.code`; the HTTP status varies for the same code (131056 arrives as 400 and 429)."""
    code: int | None = None
    message = ""
    try:
        error = response.json().get("error", {})
        code = int(error["code"]) if "code" in error else None
        message = str(error.get("message", ""))[:200]
    except (ValueError, AttributeError, TypeError):
        pass
    detail = f"HTTP {response.status_code} code {code}: {message}"
    if code in TRANSIENT_CODES:
        # Pair rate limit: the same recipient too fast; back off longer than a generic retry.
        hint = 6.0 if code == 131056 else _retry_after(response)
        return GraphTransientError(f"graph_{code}", detail, code=code, retry_after=hint)
    if code is None and (response.status_code >= 500 or response.status_code == 429):
        return GraphTransientError(f"graph_http_{response.status_code}", detail, retry_after=_retry_after(response))
    return GraphError(f"graph_{code if code is not None else response.status_code}", detail, code, code in OPS_CODES)


# Errors after which the whole request may have reached Meta: the answer timed out or the connection broke while we
# waited for it. Connecting, writing and pool waits fail before Meta could have read a complete request.
_ANSWER_LOST = (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError)


def classify_transport_error(exc: httpx.HTTPError) -> GraphTransientError:
    return GraphTransientError("graph_transport", type(exc).__name__, maybe_delivered=isinstance(exc, _ANSWER_LOST))
