"""`loopera simulate`: drive a running API with one correctly signed webhook, without Meta.

Text needs nothing else. For a voice note or an image (and to see the bot's replies), simulate also serves the
sandbox's Graph stand-in (`sandbox.graph`, the same one `loopera sandbox` and the test suite use) on --graph-port:
it serves the file for the worker's media download and records the worker's sends. Point the *workers* at it:
GRAPH_API_URL=http://127.0.0.1:<graph-port> with SANDBOX=true (the token goes to plain http only in the sandbox).
"""

from __future__ import annotations

import hashlib
import mimetypes
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from sandbox.background import BackgroundServer
from sandbox.graph import GraphStandIn
from sandbox.webhooks import User, encode, media_message, message_webhook, signed_headers, text_message
from shared.config import Settings

DEFAULT_SENDER = "15550001111"


class SimulatedGraph:
    """The Graph stand-in on a port of its own, with the files to serve and the replies it received."""

    def __init__(self, settings: Settings, port: int) -> None:
        self.graph = GraphStandIn(
            settings.graph_api_version, settings.whatsapp_token.get_secret_value(), settings.phone_number_id
        )
        self._replies: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.graph.on_send = self._sent
        self._server = BackgroundServer(Starlette(routes=self.graph.routes()), port)
        self.url = ""

    def _sent(self, body: dict[str, Any], wamid: str) -> None:
        with self._lock:
            self._replies.append(body)

    def start(self) -> None:
        self._server.start()
        self.url = self.graph.base_url = f"http://127.0.0.1:{self._server.port}"

    def stop(self) -> None:
        self._server.stop()

    def add_file(self, path: Path) -> tuple[str, str, str]:
        """(media id, mime type, sha256) of `path`, served as WhatsApp media."""
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if path.suffix.lower() in (".ogg", ".opus"):
            mime = "audio/ogg"  # what WhatsApp voice notes carry
        data = path.read_bytes()
        media_id = f"sim{self.graph.next_id()}"
        self.graph.add_media(media_id, data, mime)
        return media_id, mime, hashlib.sha256(data).hexdigest()

    def replies(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._replies)

    def downloads(self) -> int:
        return sum(1 for r in self.graph.requests if r.path.startswith("/download/"))


def post_webhook(api_url: str, body: dict[str, Any], app_secret: str, timeout: float = 10) -> httpx.Response:
    raw = encode(body)
    return httpx.post(
        f"{api_url.rstrip('/')}/webhook", content=raw, headers=signed_headers(raw, app_secret), timeout=timeout
    )


def describe_reply(message: dict[str, Any]) -> str:
    kind = message.get("type", "?")
    if kind == "text":
        return f"text: {message['text']['body']}"
    if kind == "audio":
        return f"audio (voice={message['audio'].get('voice', False)}) media id {message['audio'].get('id')}"
    return f"{kind}: {str(message.get(kind))[:200]}"


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
    stand_in = SimulatedGraph(settings, graph_port) if graph_port is not None else None
    if stand_in is not None:
        stand_in.start()
        echo(f"Graph stand-in on {stand_in.url} (workers need GRAPH_API_URL={stand_in.url} and SANDBOX=true)")
    try:
        media = request.voice or request.image
        if media is None:
            message = text_message(request.text or "")
        else:
            if stand_in is None:
                raise ValueError("media needs the Graph stand-in (graph_port)")
            media_id, mime, sha256 = stand_in.add_file(media)
            kind = "audio" if request.voice else "image"
            message = media_message(kind, media_id, mime, sha256, request.caption, voice=kind == "audio")
        user = User(wa_id=request.sender, name="Simulated User")
        body = message_webhook(settings.phone_number_id, user, message, f"wamid.sim.{uuid.uuid4().hex}")
        response = post_webhook(api_url, body, settings.app_secret.get_secret_value())
        echo(f"webhook -> {response.status_code} {response.text[:200]}")
        if response.status_code != 200:
            return False
        return stand_in is None or _await_replies(stand_in, wait, echo, bool(media))
    finally:
        if stand_in is not None:
            stand_in.stop()


def _await_replies(stand_in: SimulatedGraph, wait: float, echo: Callable[[str], Any], media: bool) -> bool:
    deadline = time.monotonic() + wait
    while not stand_in.replies() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # a reply split into parts arrives as several sends close together
    replies = stand_in.replies()
    if media:
        echo(f"media downloads by the worker: {stand_in.downloads()}")
    for reply in replies:
        echo(f"reply <- {describe_reply(reply)}")
    if not replies:
        echo(f"no reply within {wait:.0f}s (are the workers running with GRAPH_API_URL={stand_in.url}?)")
    return bool(replies)
