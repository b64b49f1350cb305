"""The API process: FastAPI for the small endpoints, a plain ASGI handler in front for /webhook."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from api import queue_depth
from api.admin import admin_router
from api.ingest import Ingestor
from api.webhook import Receive, Scope, Send, WebhookEndpoint
from shared.config import API_SECRETS, ConfigError, Settings, get_settings, is_placeholder
from shared.logging import configure_logging, get_logger
from shared.redis_client import async_redis

log = get_logger("api")


def check_api_settings(settings: Settings) -> None:
    """Refuse to run a webhook that anyone could forge."""
    settings.require(API_SECRETS, "The API")
    if is_placeholder(settings.app_secret) and not settings.dev_insecure_skip_signature:
        raise ConfigError(
            "The API cannot start: APP_SECRET is missing. It is the Meta app's secret (App Dashboard > "
            "Settings > Basic), used to verify X-Hub-Signature-256. For local experiments only, set "
            "DEV_INSECURE_SKIP_SIGNATURE=true."
        )


def _features(settings: Settings) -> dict[str, Any]:
    return {
        "text": True,
        "voice_notes": True,
        "voice_replies": bool(settings.tts_model),
        "images": bool(settings.vision_model),
        "signature_verification": not settings.dev_insecure_skip_signature,
    }


def build_fastapi(settings: Settings, ingestor: Ingestor) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if settings.dev_insecure_skip_signature:
            log.warning("api.insecure_mode", detail="DEV_INSECURE_SKIP_SIGNATURE is on: webhooks are NOT verified")
        if settings.sandbox:
            log.warning("api.sandbox_mode", detail="running against the local sandbox (docs/sandbox.md), not Meta")
        log.info("api.started", graph_api_version=settings.graph_api_version, sandbox=settings.sandbox)
        # Move everything imported and built so far (FastAPI, pydantic, ...) out of the collector's reach. Under
        # load, in-flight requests keep triggering full collections; each walked this whole heap (20-40 ms,
        # measured) and set the p99. Frozen, a full collection takes well under 1 ms.
        gc.collect()
        gc.freeze()
        depth_client = async_redis(settings)
        async with queue_depth.running_refresher(depth_client, settings.queue_depth_refresh_seconds):
            yield
        await depth_client.aclose()
        await admin_client.aclose()
        await ingestor.close()

    admin_client = async_redis(settings)
    app = FastAPI(title="Loopera WhatsApp assistant", lifespan=lifespan, docs_url=None, redoc_url=None)
    if (admin := admin_router(settings, admin_client)) is not None:
        app.include_router(admin)

    @app.get("/")
    async def root() -> dict[str, Any]:
        return {"status": "ok", "service": "loopera", "features": _features(settings)}

    @app.get("/health")
    async def health() -> dict[str, str]:
        # Liveness only: no I/O, so a Redis outage does not get the API restarted in a loop.
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        try:
            await ingestor.ping()
        except (RedisError, OSError) as exc:
            return JSONResponse({"status": "unavailable", "redis": type(exc).__name__}, status_code=503)
        return JSONResponse({"status": "ready", "redis": "ok"})

    @app.get("/metrics")
    async def metrics_endpoint() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


class LooperaApp:
    """Routes /webhook straight to its handler and everything else to FastAPI."""

    def __init__(self, fastapi_app: FastAPI, webhook: WebhookEndpoint) -> None:
        self._fastapi = fastapi_app
        self._webhook = webhook

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in ("/webhook", "/webhook/"):
            await self._webhook(scope, receive, send)
        else:
            await self._fastapi(scope, receive, send)


def create_app(settings: Settings | None = None) -> LooperaApp:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json, message_key=settings.message_hashing_key())
    check_api_settings(settings)
    ingestor = Ingestor(
        # A socket timeout above the ingest's WAIT, so a slow replica is a NotReplicatedError, not a timeout.
        async_redis(settings, socket_timeout=2.0 + settings.redis_ack_wait_ms / 1000),
        settings.dedupe_ttl_seconds,
        settings.conversation_lease_seconds,
        announce_to_flower=settings.announce_task_sent_events,
        ack_replicas=settings.ack_replicas,
        ack_wait_ms=settings.redis_ack_wait_ms,
        ledger_ttl_seconds=settings.message_ledger_ttl_seconds,
        undelivered_ttl_seconds=settings.undelivered_ttl_seconds,
    )
    return LooperaApp(build_fastapi(settings, ingestor), WebhookEndpoint(settings, ingestor))
