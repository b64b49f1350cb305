"""The sandbox in-process (its real Starlette app on a loopback port, lifespan on) in front of a recording stand-in
for the API's `POST /webhook` that checks every signature as the API does."""

from __future__ import annotations

import hmac
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.app import Sandbox
from sandbox.background import BackgroundServer
from sandbox.config import SandboxConfig
from sandbox.webhooks import sign
from tests.fakes.server import LoopbackServer, free_port

APP_SECRET = "sandbox-test-app-secret"
TOKEN = "sandbox-test-token"
PHONE_NUMBER_ID = "109876543210987"


@dataclass
class RecordingApi:
    """Answers 200 to correctly signed webhooks (403 otherwise) and keeps every request it saw."""

    requests: list[tuple[str, str, bool, Any]] = field(default_factory=list)  # (method, path, signed ok, body)
    # What it answers a correctly signed webhook with (the real API refuses some with a 4xx of its own).
    answer: tuple[int, dict[str, Any]] = (200, {})
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.server = LoopbackServer(Starlette(routes=[Route("/{path:path}", self._any, methods=["GET", "POST"])]))
        self.url = self.server.url

    async def _any(self, request: Request) -> Response:
        raw = await request.body()
        given = request.headers.get("x-hub-signature-256", "")
        valid = hmac.compare_digest(given, sign(raw, APP_SECRET))
        body = json.loads(raw) if raw else None
        with self.lock:
            self.requests.append((request.method, request.url.path, valid, body))
        status, content = self.answer if valid else (403, {})
        return JSONResponse(content, status_code=status)

    def webhooks(self) -> list[dict[str, Any]]:
        with self.lock:
            return [body for method, path, valid, body in self.requests if method == "POST" and path == "/webhook"]

    def messages(self) -> list[dict[str, Any]]:
        return [
            message
            for body in self.webhooks()
            for message in body["entry"][0]["changes"][0]["value"].get("messages", [])
        ]

    def statuses(self) -> list[dict[str, Any]]:
        return [
            status for body in self.webhooks() for status in body["entry"][0]["changes"][0]["value"].get("statuses", [])
        ]


class InProcessSandbox:
    def __init__(self, api_url: str, groq_key_missing: bool = False) -> None:
        port = free_port()
        self.config = SandboxConfig(
            api_url=api_url,
            app_secret=APP_SECRET,
            phone_number_id=PHONE_NUMBER_ID,
            token=TOKEN,
            graph_version="v25.0",
            port=port,
            groq_key_missing=groq_key_missing,
        )
        self.sandbox = Sandbox(self.config)
        self.server = BackgroundServer(self.sandbox.app(), port)
        self.url = f"http://127.0.0.1:{port}"

    def start(self) -> InProcessSandbox:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()
