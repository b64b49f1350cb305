"""A loopback WhatsApp Cloud API (Graph) that speaks Meta's wire format and records what it was sent."""

from __future__ import annotations

import hashlib
import itertools
import threading
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.server import Fault, FaultPlan, LoopbackServer

TOKEN = "test-whatsapp-token"
PHONE_NUMBER_ID = "1122334455667"


@dataclass
class Recorded:
    method: str
    path: str
    authorization: str | None
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    file: bytes | None = None
    file_name: str | None = None
    file_type: str | None = None


def graph_error(code: int, message: str = "error", status: int = 400, subcode: int | None = None) -> Fault:
    error: dict[str, Any] = {"message": f"(#{code}) {message}", "type": "OAuthException", "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = "AbCdEf"
    return Fault(status, {"error": error})


class GraphFake:
    def __init__(self, version: str = "v25.0") -> None:
        self.version = version
        self.faults = FaultPlan()
        self.requests: list[Recorded] = []
        self.media: dict[str, tuple[bytes, str]] = {}
        self.expired_media_urls: set[str] = set()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        base = f"/{version}"
        app = Starlette(
            routes=[
                Route(base + "/{phone_id}/messages", self._messages, methods=["POST"]),
                Route(base + "/{phone_id}/media", self._upload, methods=["POST"]),
                Route("/download/{media_id}", self._download, methods=["GET"]),
                Route(base + "/{media_id}", self._media_info, methods=["GET"]),
            ]
        )
        self.server = LoopbackServer(app)
        self.url = self.server.url

    # --- test API ---------------------------------------------------------------------------------------
    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.media.clear()
            self.expired_media_urls.clear()
        self.faults.clear()

    def add_media(self, media_id: str, data: bytes, mime_type: str) -> None:
        self.media[media_id] = (data, mime_type)

    def sent_messages(self) -> list[dict[str, Any]]:
        """Outbound messages (not read receipts), in the order Graph accepted them."""
        with self._lock:
            return [r.json for r in self.requests if r.path.endswith("/messages") and "type" in (r.json or {})]

    def texts_to(self, to: str) -> list[str]:
        return [m["text"]["body"] for m in self.sent_messages() if m.get("to") == to and m["type"] == "text"]

    def failed_sends(self) -> list[dict[str, Any]]:
        """Outbound messages that were answered with an injected fault (what a retry would have to resend)."""
        with self._lock:
            return [r.json["failed"] for r in self.requests if "failed" in (r.json or {})]

    def read_receipts(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.json for r in self.requests if r.path.endswith("/messages") and (r.json or {}).get("status")]

    def uploads(self) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/media")]

    # --- handlers ---------------------------------------------------------------------------------------
    def _authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {TOKEN}"

    def _record(self, item: Recorded) -> None:
        with self._lock:
            self.requests.append(item)

    async def _messages(self, request: Request) -> Response:
        body = await request.json()
        if not self._authorized(request):
            return graph_error(190, "Error validating access token: Session has expired", 401).response()
        # "send" faults hit only outbound messages (not read receipts); "messages" faults hit any POST.
        fault = self.faults.take("send") if body.get("status") != "read" else None
        if fault or (fault := self.faults.take("messages")):
            self._record(Recorded("POST", request.url.path, request.headers.get("authorization"), {"failed": body}))
            return fault.response()
        self._record(Recorded("POST", request.url.path, request.headers.get("authorization"), body))
        if body.get("status") == "read":
            return JSONResponse({"success": True})
        if body.get("messaging_product") != "whatsapp" or not (body.get("to") or body.get("recipient")):
            return graph_error(100, "Invalid parameter").response()
        if body.get("type") == "text" and len(body["text"]["body"]) > 4096:
            return graph_error(100, "Param text['body'] must be at most 4096 characters long").response()
        to = body.get("to") or body.get("recipient")
        return JSONResponse(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": f"wamid.out.{next(self._ids)}"}],
            }
        )

    async def _upload(self, request: Request) -> Response:
        if not self._authorized(request):
            return graph_error(190, "Invalid OAuth access token", 401).response()
        if fault := self.faults.take("media"):
            return fault.response()
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            return graph_error(100, "file is required").response()
        data = await upload.read()
        self._record(
            Recorded(
                "POST",
                request.url.path,
                request.headers.get("authorization"),
                form={k: v for k, v in form.items() if isinstance(v, str)},
                file=data,
                file_name=upload.filename,
                file_type=upload.content_type,
            )
        )
        return JSONResponse({"id": f"media-up-{next(self._ids)}"})

    async def _media_info(self, request: Request) -> Response:
        media_id = request.path_params["media_id"]
        self._record(Recorded("GET", request.url.path, request.headers.get("authorization")))
        if not self._authorized(request):
            return graph_error(190, "Invalid OAuth access token", 401).response()
        if fault := self.faults.take("media_info"):
            return fault.response()
        if media_id not in self.media:
            return graph_error(100, "Unsupported get request. Object does not exist").response()
        data, mime = self.media[media_id]
        url_id = f"{media_id}-{next(self._ids)}"
        return JSONResponse(
            {
                "messaging_product": "whatsapp",
                "url": f"{self.url}/download/{url_id}",
                "mime_type": mime,
                "sha256": hashlib.sha256(data).hexdigest(),
                "file_size": len(data),
                "id": media_id,
            }
        )

    async def _download(self, request: Request) -> Response:
        url_id = request.path_params["media_id"]
        self._record(Recorded("GET", request.url.path, request.headers.get("authorization")))
        if not self._authorized(request):
            return Response(status_code=401)
        if url_id in self.expired_media_urls or ((fault := self.faults.take("download")) and fault.status == 404):
            return Response(status_code=404)
        media_id = url_id.rsplit("-", 1)[0]
        data, mime = self.media[media_id]
        return Response(data, media_type=mime)
