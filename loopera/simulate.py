"""`loopera simulate`: drive a running API with a correctly signed webhook, without Meta.

Text needs nothing else. For a voice note or an image (and to see the bot's replies), simulate also runs a tiny
local stand-in for the Graph API (stdlib http.server) that serves the file for the worker's media download
(GET /<version>/<media_id> then GET /download/<media_id>) and accepts the worker's sends (POST .../messages,
.../media) and prints them. Point the *workers* at it: GRAPH_API_URL=http://127.0.0.1:<graph-port>.
The worker sends its token only to the configured Graph host, so the stand-in is trusted exactly like Graph.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import mimetypes
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from shared.config import Settings

DEFAULT_SENDER = "15550001111"


def sign(body: bytes, app_secret: str) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def build_webhook(
    settings: Settings, message: dict[str, Any], sender: str = DEFAULT_SENDER, name: str = "Simulated User"
) -> dict[str, Any]:
    """Meta's envelope around one inbound message.

    Source: https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/payload-examples
    """
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": settings.waba_id or "0",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550000000",
                                "phone_number_id": settings.phone_number_id,
                            },
                            "contacts": [{"profile": {"name": name}, "wa_id": sender}],
                            "messages": [
                                {
                                    "from": sender,
                                    "id": f"wamid.sim.{uuid.uuid4().hex}",
                                    "timestamp": str(int(time.time())),
                                    **message,
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }


def text_message(text: str) -> dict[str, Any]:
    return {"type": "text", "text": {"body": text}}


def media_message(kind: str, media_id: str, mime_type: str, caption: str | None = None) -> dict[str, Any]:
    media: dict[str, Any] = {"id": media_id, "mime_type": mime_type, "sha256": "simulated"}
    if kind == "audio":
        media["voice"] = True
    if caption:
        media["caption"] = caption
    return {"type": kind, kind: media}


@dataclass
class GraphStandIn:
    """Serves local files as WhatsApp media and records what the worker sends."""

    version: str
    port: int = 0
    media: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    sent: list[dict[str, Any]] = field(default_factory=list)
    downloads: int = 0

    def __post_init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler_class())
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.lock = threading.Lock()

    def add_file(self, path: Path) -> tuple[str, str]:
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if path.suffix.lower() in (".ogg", ".opus"):
            mime = "audio/ogg"  # what WhatsApp voice notes carry
        media_id = f"sim{uuid.uuid4().int % 10**15}"
        self.media[media_id] = (path.read_bytes(), mime)
        return media_id, mime

    def start(self) -> None:
        threading.Thread(target=self._server.serve_forever, name="graph-stand-in", daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send_json(self, body: dict[str, Any], status: int = 200) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                parts = self.path.split("?")[0].strip("/").split("/")
                if len(parts) == 2 and parts[0] == "download" and parts[1] in stand_in.media:
                    data, mime = stand_in.media[parts[1]]
                    with stand_in.lock:
                        stand_in.downloads += 1
                    self.send_response(200)
                    self.send_header("content-type", mime)
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                elif len(parts) == 2 and parts[0] == stand_in.version and parts[1] in stand_in.media:
                    data, mime = stand_in.media[parts[1]]
                    self._send_json(
                        {
                            "messaging_product": "whatsapp",
                            "url": f"{stand_in.url}/download/{parts[1]}",
                            "mime_type": mime,
                            "sha256": hashlib.sha256(data).hexdigest(),
                            "file_size": len(data),
                            "id": parts[1],
                        }
                    )
                else:
                    self._send_json({"error": {"message": "(#100) Object does not exist", "code": 100}}, 400)

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                if self.path.rstrip("/").endswith("/media"):
                    self._send_json({"id": f"sim-upload-{uuid.uuid4().hex[:8]}"})
                    return
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                if body.get("status") != "read" and "type" in body:
                    with stand_in.lock:
                        stand_in.sent.append(body)
                to = body.get("to") or body.get("recipient") or ""
                self._send_json(
                    {
                        "messaging_product": "whatsapp",
                        "contacts": [{"input": to, "wa_id": to}],
                        "messages": [{"id": f"wamid.sim.out.{uuid.uuid4().hex[:12]}"}],
                    }
                )

        return Handler

    def replies(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.sent)


def post_webhook(api_url: str, body: dict[str, Any], app_secret: str, timeout: float = 10) -> httpx.Response:
    raw = json.dumps(body, separators=(",", ":")).encode()
    headers = {"content-type": "application/json", "x-hub-signature-256": sign(raw, app_secret)}
    return httpx.post(f"{api_url.rstrip('/')}/webhook", content=raw, headers=headers, timeout=timeout)


def describe_reply(message: dict[str, Any]) -> str:
    kind = message.get("type", "?")
    if kind == "text":
        return f"text: {message['text']['body']}"
    if kind == "audio":
        return f"audio (voice={message['audio'].get('voice', False)}) media id {message['audio'].get('id')}"
    return f"{kind}: {json.dumps(message.get(kind), ensure_ascii=False)[:200]}"


@dataclass(frozen=True)
class Simulation:
    text: str | None = None
    voice: Path | None = None
    image: Path | None = None
    caption: str | None = None
    sender: str = DEFAULT_SENDER


def run(
    settings: Settings,
    request: Simulation,
    api_url: str,
    graph_port: int | None,
    wait: float,
    echo: Callable[[str], Any] = print,
) -> bool:
    """Post the webhook; with a Graph stand-in, also serve the media and wait for the bot's replies."""
    stand_in = GraphStandIn(settings.graph_api_version, graph_port) if graph_port is not None else None
    if stand_in is not None:
        stand_in.start()
        echo(f"Graph stand-in on {stand_in.url} (workers need GRAPH_API_URL={stand_in.url})")
    try:
        media = request.voice or request.image
        if media is None:
            message = text_message(request.text or "")
        else:
            if stand_in is None:
                raise ValueError("media needs the Graph stand-in (graph_port)")
            media_id, mime = stand_in.add_file(media)
            message = media_message("audio" if request.voice else "image", media_id, mime, request.caption)
        body = build_webhook(settings, message, request.sender)
        response = post_webhook(api_url, body, settings.app_secret.get_secret_value())
        echo(f"webhook -> {response.status_code} {response.text[:200]}")
        if response.status_code != 200:
            return False
        return stand_in is None or _await_replies(stand_in, wait, echo)
    finally:
        if stand_in is not None:
            stand_in.stop()


def _await_replies(stand_in: GraphStandIn, wait: float, echo: Callable[[str], Any]) -> bool:
    deadline = time.monotonic() + wait
    while not stand_in.replies() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # a reply split into parts arrives as several sends close together
    replies = stand_in.replies()
    if stand_in.media:
        echo(f"media downloads by the worker: {stand_in.downloads}")
    for reply in replies:
        echo(f"reply <- {describe_reply(reply)}")
    if not replies:
        echo(f"no reply within {wait:.0f}s (are the workers running with GRAPH_API_URL={stand_in.url}?)")
    return bool(replies)
