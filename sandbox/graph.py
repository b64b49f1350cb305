"""The WhatsApp Cloud API (Graph) as the workers call it through GRAPH_API_URL: send message, mark read and typing
indicator, media upload, media URL and media download.

Wire format: https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages and
https://developers.facebook.com/docs/whatsapp/cloud-api/reference/media. The sandbox, `loopera simulate` and the
test suite's Graph fake all serve these routes, so the three cannot drift apart. Subclasses program errors by
overriding `fault`; `on_send`/`on_read`/`on_upload` let the sandbox react to what the workers did.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.graph_account import GraphAccount
from sandbox.recorded import Recorded

MAX_TEXT_CHARS = 4096  # Graph rejects longer text bodies (error 100)


def graph_error_body(code: int, message: str = "error", subcode: int | None = None) -> dict[str, Any]:
    """Graph's error envelope (https://developers.facebook.com/docs/graph-api/guides/error-handling)."""
    error: dict[str, Any] = {"message": f"(#{code}) {message}", "type": "OAuthException", "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = "AbCdEf"
    return {"error": error}


def graph_error_response(code: int, message: str = "error", status: int = 400) -> Response:
    return JSONResponse(graph_error_body(code, message), status_code=status)


class GraphStandIn(GraphAccount):
    """Graph's message and media endpoints for one phone number id, authorised by one bearer token."""

    def __init__(
        self, version: str, token: str, phone_number_id: str, base_url: str = "", app_secret: str = ""
    ) -> None:
        super().__init__(token, phone_number_id, app_secret)
        self.version = version
        # Where media URLs point (this server's own address); set once the server's port is known.
        self.base_url = base_url
        self.requests: list[Recorded] = []
        # Keep only the newest this many requests (None: all, as tests read them); uploads hold whole files.
        self.max_recorded: int | None = None
        self.media: dict[str, tuple[bytes, str]] = {}
        self.expired_media_urls: set[str] = set()
        # Serve media URLs under another host name (e.g. "localhost") to test where the token may go.
        self.media_host: str | None = None
        # Or under a whole other origin ("https://127.0.0.1:<port>", another port...): media URLs come from Meta's
        # answer, and the workers must judge scheme, host and port before sending the token there.
        self.media_origin: str | None = None
        # Seconds each media upload takes (Meta's upload is not instant; the voice benchmark sets it).
        self.upload_delay = 0.0
        self.on_send: Callable[[dict[str, Any], str], None] | None = None
        self.on_read: Callable[[dict[str, Any]], None] | None = None
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    # --- hooks --------------------------------------------------------------------------------------------
    def fault(self, route: str) -> Response | None:
        """An injected error for `route` ("messages", "messages:<type>", "send", "media", "media_info",
        "download", "subscribed_apps"), or None to answer normally. The stand-in itself never fails."""
        return None

    def next_id(self) -> int:
        return next(self._ids)

    def routes(self) -> list[Route]:
        base = f"/{self.version}"
        return [
            *self.account_routes(base),
            Route(base + "/{phone_id}/messages", self._messages, methods=["POST"]),
            Route(base + "/{phone_id}/media", self._upload, methods=["POST"]),
            Route("/download/{media_id}", self._download, methods=["GET"]),
            Route(base + "/{media_id}", self._media_info, methods=["GET"]),
        ]

    def add_media(self, media_id: str, data: bytes, mime_type: str) -> None:
        with self._lock:
            self.media[media_id] = (data, mime_type)

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.token}"

    def _record(self, item: Recorded) -> None:
        with self._lock:
            self.requests.append(item)
            if self.max_recorded is not None and len(self.requests) > self.max_recorded:
                del self.requests[: len(self.requests) - self.max_recorded]

    def _message_fault(self, body: dict[str, Any]) -> Response | None:
        # "messages:<type>" targets one kind of send (e.g. only voice notes; read receipts are "messages:status"),
        # "send" hits only outbound messages (not read receipts), "messages" hits whatever POST comes next.
        fault = self.fault(f"messages:{body.get('type', 'status')}")
        if fault is None and body.get("status") != "read":
            fault = self.fault("send")
        return fault or self.fault("messages")

    async def _messages(self, request: Request) -> Response:
        body = await request.json()
        auth = request.headers.get("authorization")
        if not self._authorized(request):
            return graph_error_response(190, "Error validating access token: Session has expired", 401)
        if (fault := self._message_fault(body)) is not None:
            self._record(Recorded("POST", request.url.path, auth, {"failed": body}))
            return fault
        recorded = Recorded("POST", request.url.path, auth, body)
        self._record(recorded)
        if body.get("status") == "read":
            if self.on_read is not None:
                self.on_read(body)
            return JSONResponse({"success": True})
        if body.get("messaging_product") != "whatsapp" or not (body.get("to") or body.get("recipient")):
            return graph_error_response(100, "Invalid parameter")
        if body.get("type") == "text" and len(body["text"]["body"]) > MAX_TEXT_CHARS:
            return graph_error_response(100, f"Param text['body'] must be at most {MAX_TEXT_CHARS} characters long")
        to = body.get("to") or body.get("recipient")
        wamid = recorded.meta_id = f"wamid.out.{self.next_id()}"
        if self.on_send is not None:
            self.on_send(body, wamid)
        return JSONResponse(
            {"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}], "messages": [{"id": wamid}]}
        )

    async def _upload(self, request: Request) -> Response:
        if not self._authorized(request):
            return graph_error_response(190, "Invalid OAuth access token", 401)
        if (fault := self.fault("media")) is not None:
            return fault
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            return graph_error_response(100, "file is required")
        data = await upload.read()
        await form.close()  # uploads are spooled to temporary files; close them
        if self.upload_delay:
            await asyncio.sleep(self.upload_delay)
        mime = upload.content_type or str(form.get("type") or "application/octet-stream")
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
        media_id = f"media-up-{self.next_id()}"
        self.add_media(media_id, data, mime)  # an uploaded file can be fetched back by its id, as on Graph
        return JSONResponse({"id": media_id})

    async def _media_info(self, request: Request) -> Response:
        media_id = request.path_params["media_id"]
        self._record(Recorded("GET", request.url.path, request.headers.get("authorization")))
        if not self._authorized(request):
            return graph_error_response(190, "Invalid OAuth access token", 401)
        if self.node_type(media_id) is not None:
            return self.node(request, media_id)
        if (fault := self.fault("media_info")) is not None:
            return fault
        if media_id not in self.media:
            return graph_error_response(100, "Unsupported get request. Object does not exist")
        data, mime = self.media[media_id]
        return JSONResponse(
            {
                "messaging_product": "whatsapp",
                # A fresh URL per lookup, as Graph's expire after five minutes.
                "url": f"{self._media_base()}/download/{media_id}-{self.next_id()}",
                "mime_type": mime,
                "sha256": hashlib.sha256(data).hexdigest(),
                "file_size": len(data),
                "id": media_id,
            }
        )

    def _media_base(self) -> str:
        if self.media_origin:
            return self.media_origin
        if self.media_host:
            return f"http://{self.media_host}:{urlsplit(self.base_url).port}"
        return self.base_url

    async def _download(self, request: Request) -> Response:
        url_id = request.path_params["media_id"]
        self._record(Recorded("GET", request.url.path, request.headers.get("authorization")))
        if not self._authorized(request):
            return Response(status_code=401)
        fault = self.fault("download")
        if url_id in self.expired_media_urls or (fault is not None and fault.status_code == 404):
            return Response(status_code=404)
        media_id = url_id.rsplit("-", 1)[0]
        if media_id not in self.media:
            return Response(status_code=404)
        data, mime = self.media[media_id]
        return Response(data, media_type=mime)
