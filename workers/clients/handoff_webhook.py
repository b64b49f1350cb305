"""The optional POST to HANDOFF_WEBHOOK_URL when a user asks for a person: signed, retried, never blocking.

Body: JSON `{"event": "handoff", "conversation": ..., "conversation_ref": ..., "wa_id": ..., "user_id": ...,
"requested_at": epoch s,
"paused_until": epoch ms, "last_turns": [{"role", "content", "ts"}, ...]}`. It names the user on purpose: the
receiver is the operator's own system, which must reach them.
Signature: header `X-Loopera-Signature: sha256=<hex>`, HMAC-SHA256 with HANDOFF_WEBHOOK_SECRET over
`<X-Loopera-Timestamp>.<body>` (the timestamp in the signed text lets the receiver refuse replays).
Delivery: on a daemon thread, up to `attempts` tries with exponential backoff (1 s, 2 s, 4 s, ...) on a network
error or a non-2xx answer; the job that asked does not wait. Limit: a worker process that dies during the retries
loses the rest of them (the `ops.handoff` log event remains the record).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from typing import Any

import httpx
import orjson

from shared.logging import get_logger

log = get_logger("workers.handoff_webhook")

SIGNATURE_HEADER = "X-Loopera-Signature"
TIMESTAMP_HEADER = "X-Loopera-Timestamp"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def deliver(url: str, secret: str, payload: dict[str, Any], attempts: int = 5, first_delay: float = 1.0) -> bool:
    """POST `payload` until a 2xx answer or `attempts` tries; blocks the caller (see `deliver_in_background`).
    Returns whether it was delivered."""
    body = orjson.dumps(payload)
    delay = first_delay
    for attempt in range(1, attempts + 1):
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(secret, timestamp, body),
        }
        try:
            response = httpx.post(url, content=body, headers=headers, timeout=10)
            if response.is_success:
                log.info("handoff.webhook_delivered", attempt=attempt)
                return True
            reason = f"http_{response.status_code}"
        except httpx.HTTPError as exc:
            reason = type(exc).__name__
        log.warning("handoff.webhook_failed", attempt=attempt, reason=reason)
        if attempt < attempts:
            time.sleep(delay)
            delay *= 2
    log.error("handoff.webhook_gave_up", attempts=attempts)
    return False


def deliver_in_background(url: str, secret: str, payload: dict[str, Any]) -> threading.Thread:
    thread = threading.Thread(target=deliver, args=(url, secret, payload), name="handoff-webhook", daemon=True)
    thread.start()
    return thread
