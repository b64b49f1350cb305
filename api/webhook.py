"""The webhook endpoint as a plain ASGI app: verify, parse, enqueue durably, then 200.

It sits in front of FastAPI (see `api.app`) because it is the one hot path: every message and every delivery
status passes through it, and Meta only sees how fast it answers.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

import orjson
from redis.exceptions import RedisError

from api import metrics
from api.ingest import DUPLICATE, Ingestor
from api.signature import SignatureCheck, verify_signature
from api.webhook_payload import parse_webhook
from shared.config import Settings
from shared.logging import get_logger

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = get_logger("api.webhook")

_JSON = [(b"content-type", b"application/json")]


_OK_RESPONSE = {
    "type": "http.response.start",
    "status": 200,
    "headers": [*_JSON, (b"content-length", b"15")],
}
_OK_BODY = {"type": "http.response.body", "body": b'{"status":"ok"}'}


async def respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] = _JSON) -> None:
    # With a content-length the server writes the body as is, instead of chunked framing.
    length = (b"content-length", str(len(body)).encode())
    await send({"type": "http.response.start", "status": status, "headers": [*headers, length]})
    await send({"type": "http.response.body", "body": body})


async def respond_ok(send: Send) -> None:
    """The hot path's answer, from constant messages (servers only read them)."""
    await send(_OK_RESPONSE)
    await send(_OK_BODY)


def _error(message: str) -> bytes:
    return orjson.dumps({"error": message})


class WebhookEndpoint:
    def __init__(self, settings: Settings, ingestor: Ingestor) -> None:
        self._settings = settings
        self._secret = settings.app_secret.get_secret_value().encode()
        self._verify_token = settings.verify_token.get_secret_value().encode()
        self._insecure = settings.dev_insecure_skip_signature
        self._max_bytes = settings.max_webhook_bytes
        self._phone_number_id = settings.phone_number_id
        self._message_key = settings.message_hashing_key()
        self._ingestor = ingestor

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if method == "POST":
            await self._receive_update(scope, receive, send)
        elif method in ("GET", "HEAD"):
            await self._verify_subscription(scope, send)
        else:
            await respond(send, 405, _error("method not allowed"), [*_JSON, (b"allow", b"GET, POST")])

    async def _verify_subscription(self, scope: Scope, send: Send) -> None:
        query = parse_qs(scope["query_string"].decode("latin-1"))
        mode = query.get("hub.mode", [""])[0]
        token = query.get("hub.verify_token", [""])[0].encode()
        challenge = query.get("hub.challenge", [""])[0]
        if mode == "subscribe" and self._verify_token and hmac.compare_digest(token, self._verify_token):
            log.info("webhook.verified")
            await respond(send, 200, challenge.encode(), [(b"content-type", b"text/plain; charset=utf-8")])
            return
        log.warning("webhook.verification_failed", mode=mode)
        await respond(send, 403, _error("verification failed"))

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The raw bytes, or None when they exceed the cap (checked before and while reading)."""
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self._max_bytes:
                return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _signature_header(self, scope: Scope) -> str | None:
        for name, value in scope["headers"]:
            if name == b"x-hub-signature-256":
                return str(value.decode("latin-1"))
        return None

    async def _receive_update(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await self._read_body(scope, receive)
        if body is None:
            metrics.WEBHOOKS.labels("too_large").inc()
            await respond(send, 413, _error("body too large"))
            return
        if not self._insecure:
            check = verify_signature(body, self._signature_header(scope), self._secret)
            if check is not SignatureCheck.OK:
                # A wrong APP_SECRET makes Meta retry every message for 7 days: say so loudly.
                log.error("webhook.signature_rejected", reason=check.value)
                metrics.WEBHOOKS.labels(f"{check.value}_signature").inc()
                status = 401 if check is SignatureCheck.MISSING else 403
                await respond(send, status, _error(f"signature {check.value}"))
                return
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            metrics.WEBHOOKS.labels("invalid").inc()
            await respond(send, 400, _error("invalid JSON"))
            return
        await self._enqueue(payload, send)

    async def _enqueue(self, payload: Any, send: Send) -> None:
        contents = parse_webhook(payload, self._phone_number_id, self._message_key)
        for failed in contents.failed_statuses:
            log.warning("whatsapp.status_failed", correlation_id=failed.message_id_hash, codes=failed.codes)
        if contents.statuses:
            metrics.STATUSES_DELIVERED.inc(contents.statuses - len(contents.failed_statuses))
            if contents.failed_statuses:
                metrics.STATUSES_FAILED.inc(len(contents.failed_statuses))
        if contents.jobs:
            started = time.perf_counter()
            try:
                results = await self._ingestor.ingest(contents.jobs)
            except RedisError as exc:
                # Nothing was acknowledged: Meta redelivers, and the atomic script left no dedupe marker behind.
                log.error("webhook.enqueue_failed", error=type(exc).__name__)
                metrics.WEBHOOKS.labels("unavailable").inc()
                await respond(send, 503, _error("queue unavailable, retry later"))
                return
            metrics.ENQUEUE_SECONDS.observe(time.perf_counter() - started)
            for job, result in zip(contents.jobs, results, strict=True):
                # The first line of a message's journey; the worker's lines carry the same correlation id.
                log.info("message.queued", correlation_id=job.correlation_id, queue=job.queue, result=result)
            duplicates = results.count(DUPLICATE)
            metrics.MESSAGES_QUEUED.inc(len(results) - duplicates)
            if duplicates:
                metrics.MESSAGES_DUPLICATE.inc(duplicates)
            outcome = "ok" if duplicates < len(results) else "duplicate"
        else:
            outcome = "ok" if contents.statuses else "ignored"
        metrics.WEBHOOK_OUTCOMES[outcome].inc()
        await respond_ok(send)
