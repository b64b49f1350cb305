"""The webhook endpoint as a plain ASGI app: verify, parse, enqueue durably, then 200.

It sits in front of FastAPI (see `api.app`) because it is the one hot path: every message and every delivery
status passes through it, and Meta only sees how fast it answers.
"""

from __future__ import annotations

import asyncio
import hmac
import time
import traceback
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs

import orjson
from redis.exceptions import RedisError

from api import metrics
from api.ingest import DUPLICATE, Ingestor
from api.signature import SignatureCheck, verify_signature
from api.webhook_payload import WebhookContents, parse_webhook
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


class Answer(NamedTuple):
    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]] = _JSON


# `connection: close` makes uvicorn close the socket once the answer is written, instead of reading (draining) the
# rest of a body we refused: a 1 GiB upload costs one read buffer, not 1 GiB of traffic.
_CLOSE = [*_JSON, (b"connection", b"close")]
OK = Answer(200, b"")  # sent from the constant messages above (identity, not equality, selects it)
TOO_LARGE = Answer(413, _error("body too large"), _CLOSE)
BODY_TIMEOUT = Answer(408, _error("body not received in time"), _CLOSE)
UNAVAILABLE = Answer(503, _error("temporarily unavailable, retry later"))
QUEUE_UNAVAILABLE = Answer(503, _error("queue unavailable, retry later"))


class WebhookEndpoint:
    def __init__(self, settings: Settings, ingestor: Ingestor) -> None:
        self._settings = settings
        self._secret = settings.app_secret.get_secret_value().encode()
        self._verify_token = settings.verify_token.get_secret_value().encode()
        self._insecure = settings.dev_insecure_skip_signature
        self._max_bytes = settings.max_webhook_bytes
        self._body_timeout = settings.webhook_body_timeout_seconds
        self._phone_number_id = settings.phone_number_id
        self._message_key = settings.message_hashing_key()
        self._pause_minutes = settings.handoff_pause_minutes
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

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | Answer | None:
        """The raw bytes; an Answer when they exceed the cap (checked before and while reading) or do not arrive
        within the body timeout; None when the client went away."""
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self._max_bytes:
                return TOO_LARGE
        chunks: list[bytes] = []
        size = 0
        try:
            # One deadline for the whole body: a client dripping a byte a second must not hold a connection (and
            # its buffers) for minutes. Meta sends from data centres; a 3 MB body takes well under a second.
            async with asyncio.timeout(self._body_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return None
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self._max_bytes:
                        return TOO_LARGE
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        except TimeoutError:
            return BODY_TIMEOUT

    def _signature_header(self, scope: Scope) -> str | None:
        for name, value in scope["headers"]:
            if name == b"x-hub-signature-256":
                return str(value.decode("latin-1"))
        return None

    async def _receive_update(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            answer = await self._handle_update(scope, receive)
        except Exception as exc:  # the one place an unforeseen error becomes an answer
            # 503, not 500 and not a blanket 200: Meta redelivers, the dedupe markers make that safe, and nothing
            # valid is dropped. Only the type and the code location are logged: an exception's message may quote
            # the body (numbers, text).
            log.error("webhook.unexpected_error", error=type(exc).__name__, at=_origin(exc))
            metrics.FAILURES.labels("request").inc()
            metrics.WEBHOOKS.labels("failed").inc()
            answer = UNAVAILABLE
        if answer is OK:
            await respond_ok(send)
        elif answer is not None:
            await respond(send, *answer)

    async def _handle_update(self, scope: Scope, receive: Receive) -> Answer | None:
        body = await self._read_body(scope, receive)
        if body is None:
            return None  # the client went away: nobody to answer, nothing acknowledged
        if not isinstance(body, bytes):
            metrics.WEBHOOKS.labels("too_large" if body is TOO_LARGE else "body_timeout").inc()
            return body
        if not self._insecure:
            check = verify_signature(body, self._signature_header(scope), self._secret)
            if check is not SignatureCheck.OK:
                # A wrong APP_SECRET makes Meta retry every message for 7 days: say so loudly.
                log.error("webhook.signature_rejected", reason=check.value)
                metrics.WEBHOOKS.labels(f"{check.value}_signature").inc()
                status = 401 if check is SignatureCheck.MISSING else 403
                return Answer(status, _error(f"signature {check.value}"))
        try:
            # The size is capped above; orjson bounds the nesting while parsing (1024 levels, no Python recursion).
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            metrics.WEBHOOKS.labels("invalid").inc()
            return Answer(400, _error("invalid JSON"))
        return await self._enqueue(payload)

    async def _record_preferences(self, contents: WebhookContents) -> bool:
        """Meta's marketing opt-out/in, recorded, never answered (for template sends that honour it). False when
        Redis refused it: nothing is acknowledged then, and Meta redelivers."""
        try:
            await self._ingestor.record_preferences(contents.preferences)
        except RedisError as exc:
            log.error("webhook.enqueue_failed", error=type(exc).__name__)
            metrics.WEBHOOKS.labels("unavailable").inc()
            return False
        for update in contents.preferences:
            log.info("user_preferences.recorded", category=update.category, value=update.value)
            known = update.value if update.value in ("stop", "resume", "signup") else "other"
            metrics.PREFERENCES.labels(known).inc()
        return True

    async def _enqueue(self, payload: Any) -> Answer:
        contents = parse_webhook(payload, self._phone_number_id, self._message_key)
        _report_problems(contents)
        for failed in contents.failed_statuses:
            log.warning("whatsapp.status_failed", correlation_id=failed.message_id_hash, codes=failed.codes)
        if contents.preferences and not await self._record_preferences(contents):
            return QUEUE_UNAVAILABLE
        for status, code in contents.status_labels:
            metrics.count_status(status, code)
        results = await self._store(contents)
        if results is None:
            return QUEUE_UNAVAILABLE
        if contents.jobs:
            outcome = _count_queued(contents, results)
        else:
            outcome = "ok" if contents.statuses or contents.preferences else "ignored"
        if contents.failures:
            # The valid items are queued; the failed ones come back with Meta's redelivery (the queued ones are
            # then duplicates), and are not lost should a fix be deployed meanwhile.
            metrics.WEBHOOKS.labels("failed").inc()
            return UNAVAILABLE
        metrics.WEBHOOK_OUTCOMES[outcome].inc()
        return OK

    async def _store(self, contents: WebhookContents) -> list[int] | None:
        """One round trip: the messages, and the statuses of our reply parts (shared/callback_data.py); statuses
        of other messages cost none. The messages' results; None when Redis refused (nothing is acknowledged then:
        Meta redelivers, and the atomic script left no dedupe marker behind)."""
        if not (contents.jobs or contents.tracked):
            return []
        started = time.perf_counter()
        try:
            if contents.pauses:
                await self._ingestor.pause(contents.pauses, self._pause_minutes)
            results, latencies = await self._ingestor.record(contents.jobs, contents.tracked)
        except RedisError as exc:
            log.error("webhook.enqueue_failed", error=type(exc).__name__)
            metrics.WEBHOOKS.labels("unavailable").inc()
            return None
        metrics.ENQUEUE_SECONDS.observe(time.perf_counter() - started)
        for latency in latencies:
            if latency >= 0:
                metrics.DELIVERED_SECONDS.observe(latency / 1000)
        return results


def _count_queued(contents: WebhookContents, results: list[int]) -> str:
    """Log and count the messages' results; the webhook's outcome ("ok", or "duplicate" when all were)."""
    for job, result in zip(contents.jobs, results, strict=True):
        # The first line of a message's journey; the worker's lines carry the same correlation id.
        log.info("message.queued", correlation_id=job.correlation_id, queue=job.queue, result=result)
    duplicates = results.count(DUPLICATE)
    metrics.MESSAGES_QUEUED.inc(len(results) - duplicates)
    if duplicates:
        metrics.MESSAGES_DUPLICATE.inc(duplicates)
    return "ok" if duplicates < len(results) else "duplicate"


def _report_problems(contents: WebhookContents) -> None:
    """One line per skipped or failed item, by position: the body's content is never logged."""
    for problem in contents.skipped:
        log.warning("webhook.item_skipped", **asdict(problem))
        metrics.ITEMS_SKIPPED.labels(problem.item, problem.reason).inc()
    for problem in contents.failures:
        log.error("webhook.item_failed", **asdict(problem))
        metrics.FAILURES.labels("item").inc()


def _origin(exc: BaseException) -> str:
    """`file.py:line` where the exception was raised."""
    frames = traceback.extract_tb(exc.__traceback__)
    return f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
