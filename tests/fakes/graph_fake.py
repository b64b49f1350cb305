"""A loopback WhatsApp Cloud API (Graph) that speaks Meta's wire format and records what it was sent."""

from __future__ import annotations

import asyncio
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
WABA_ID = "1234567890987654321"
APP_ID = "987654321012345"
DISPLAY_PHONE_NUMBER = "+1 555-078-3881"


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
        # Serve media URLs under another host name (e.g. "localhost") to test where the token may go.
        self.media_host: str | None = None
        # Seconds each media upload takes (Meta's upload is not instant; the voice benchmark sets it).
        self.upload_delay = 0.0
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._init_account()
        base = f"/{version}"
        app = Starlette(
            routes=[
                # Account plumbing (Graph API reference: WhatsApp Business Account, subscribed_apps and
                # phone_numbers); before the catch-all node route.
                Route(base + "/debug_token", self._debug_token, methods=["GET"]),
                Route(base + "/{waba_id}/subscribed_apps", self._subscribed_apps, methods=["GET", "POST"]),
                Route(base + "/{waba_id}/phone_numbers", self._phone_numbers, methods=["GET"]),
                Route(base + "/{app_id}/subscriptions", self._app_subscriptions, methods=["GET", "POST"]),
                Route(base + "/{phone_id}/messages", self._messages, methods=["POST"]),
                Route(base + "/{phone_id}/media", self._upload, methods=["POST"]),
                Route("/download/{media_id}", self._download, methods=["GET"]),
                Route(base + "/{media_id}", self._media_info, methods=["GET"]),
            ]
        )
        self.server = LoopbackServer(app)
        self.url = self.server.url

    # --- test API ---------------------------------------------------------------------------------------
    def _init_account(self) -> None:
        # What debug_token says about TOKEN: valid, never expires (a System User token), both WhatsApp scopes.
        self.token_info: dict[str, Any] = {
            "app_id": APP_ID,
            "type": "SYSTEM_USER",
            "application": "Loopera",
            "data_access_expires_at": 0,
            "expires_at": 0,
            "is_valid": True,
            "scopes": ["whatsapp_business_management", "whatsapp_business_messaging"],
            "granular_scopes": [
                {"scope": "whatsapp_business_management", "target_ids": [WABA_ID]},
                {"scope": "whatsapp_business_messaging", "target_ids": [WABA_ID]},
            ],
            "user_id": "100000000000001",
        }
        self.app_secret = "test-app-secret-0123456789abcdef"
        self.wabas: dict[str, list[str]] = {WABA_ID: [PHONE_NUMBER_ID]}
        self.phone_numbers: dict[str, str] = {PHONE_NUMBER_ID: DISPLAY_PHONE_NUMBER}
        # The app's WhatsApp webhook subscription, as GET /<APP_ID>/subscriptions lists it (Graph API reference:
        # Application subscriptions); only `messages` until `loopera subscribe` adds smb_message_echoes.
        self.webhook_fields: list[str] = ["messages"]
        self.webhook_callback = "https://bot.example.com/webhook"
        # WABA id -> subscribed apps entries, as GET /<WABA_ID>/subscribed_apps lists them.
        self.subscriptions: dict[str, list[dict[str, Any]]] = {}

    def subscribe_app(self, waba_id: str = WABA_ID, override_callback_uri: str | None = None) -> None:
        entry: dict[str, Any] = {
            "whatsapp_business_api_data": {
                "id": APP_ID,
                "link": "https://www.facebook.com/games/?app_id=1",
                "name": "Loopera",
            }
        }
        if override_callback_uri:
            entry["override_callback_uri"] = override_callback_uri
        self.subscriptions[waba_id] = [entry]

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.media.clear()
            self.expired_media_urls.clear()
        self.media_host = None
        self.upload_delay = 0.0
        self.faults.clear()
        self._init_account()

    def add_media(self, media_id: str, data: bytes, mime_type: str) -> None:
        self.media[media_id] = (data, mime_type)

    def sent_messages(self) -> list[dict[str, Any]]:
        """Outbound messages (not read receipts), in the order Graph accepted them."""
        with self._lock:
            return [r.json for r in self.requests if r.path.endswith("/messages") and "type" in (r.json or {})]

    def texts_to(self, to: str) -> list[str]:
        return [m["text"]["body"] for m in self.sent_messages() if m.get("to") == to and m["type"] == "text"]

    def texts_for(self, address: str) -> list[str]:
        """Text bodies sent to `address`, whether addressed by `to` (wa_id) or `recipient` (business-scoped id)."""
        return [
            m["text"]["body"]
            for m in self.sent_messages()
            if address in (m.get("to"), m.get("recipient")) and m["type"] == "text"
        ]

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
        # "messages:<type>" targets one kind of send (e.g. only voice notes; read receipts are "messages:status"),
        # "send" hits only outbound messages (not read receipts), "messages" hits whatever POST comes next.
        fault = self.faults.take(f"messages:{body.get('type', 'status')}")
        if fault is None and body.get("status") != "read":
            fault = self.faults.take("send")
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
        await form.close()  # uploads are spooled to temporary files; close them (filterwarnings=error)
        if self.upload_delay:
            await asyncio.sleep(self.upload_delay)
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

    async def _debug_token(self, request: Request) -> Response:
        self._record(Recorded("GET", request.url.path, None))
        # Authenticated by an app access token `<app_id>|<app_secret>`, not the user token being inspected.
        if request.query_params.get("access_token") != f"{APP_ID}|{self.app_secret}":
            return graph_error(190, "Invalid OAuth access token signature.", 400).response()
        if request.query_params.get("input_token") != TOKEN:
            return JSONResponse(
                {
                    "data": {
                        "error": {"code": 190, "message": "Invalid OAuth access token.", "subcode": 0},
                        "is_valid": False,
                        "scopes": [],
                    }
                }
            )
        return JSONResponse({"data": self.token_info})

    async def _subscribed_apps(self, request: Request) -> Response:
        waba_id = request.path_params["waba_id"]
        body: dict[str, Any] = {}
        if request.method == "POST":
            if request.headers.get("content-type", "").startswith("application/json"):
                body = await request.json()
            else:  # Graph takes form or query parameters too
                body = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
                body.update(request.query_params)
        self._record(Recorded(request.method, request.url.path, request.headers.get("authorization"), body))
        if not self._authorized(request):
            return graph_error(190, "Error validating access token: Session has expired", 401).response()
        if fault := self.faults.take("subscribed_apps"):
            return fault.response()
        if waba_id not in self.wabas:
            return graph_error(100, "Unsupported get request. Object does not exist").response()
        if request.method == "GET":
            return JSONResponse({"data": self.subscriptions.get(waba_id, [])})
        uri = body.get("override_callback_uri")
        if uri is not None and (len(uri) > 200 or not body.get("verify_token")):
            return graph_error(100, "Invalid parameter").response()
        self.subscribe_app(waba_id, uri)
        return JSONResponse({"success": True})

    async def _app_subscriptions(self, request: Request) -> Response:
        params: dict[str, Any] = dict(request.query_params)
        if request.method == "POST":
            params |= {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        self._record(Recorded(request.method, request.url.path, None, params))
        if request.path_params["app_id"] != APP_ID or params.get("access_token") != f"{APP_ID}|{self.app_secret}":
            return graph_error(190, "Invalid OAuth access token", 400).response()
        if request.method == "POST":
            if params.get("object") != "whatsapp_business_account" or not params.get("verify_token"):
                return graph_error(100, "Invalid parameter").response()
            self.webhook_callback = params.get("callback_url", self.webhook_callback)
            self.webhook_fields = [f for f in str(params.get("fields", "")).split(",") if f]
            return JSONResponse({"success": True})
        fields = [{"name": name, "version": self.version} for name in self.webhook_fields]
        item = {"object": "whatsapp_business_account", "callback_url": self.webhook_callback, "active": True}
        return JSONResponse({"data": [item | {"fields": fields}]})

    async def _phone_numbers(self, request: Request) -> Response:
        waba_id = request.path_params["waba_id"]
        self._record(Recorded("GET", request.url.path, request.headers.get("authorization")))
        if not self._authorized(request):
            return graph_error(190, "Error validating access token: Session has expired", 401).response()
        if waba_id not in self.wabas:
            return _nonexisting_edge("phone_numbers", self._node_type(waba_id))
        numbers = [
            {
                "id": pid,
                "display_phone_number": self.phone_numbers[pid],
                "verified_name": "Loopera",
                "quality_rating": "GREEN",
            }
            for pid in self.wabas[waba_id]
        ]
        return JSONResponse({"data": numbers})

    def _node_type(self, node_id: str) -> str | None:
        if node_id in self.wabas:
            return "WhatsAppBusinessAccount"
        if node_id in self.phone_numbers:
            return "WhatsAppBusinessPhoneNumber"
        return None

    def _node(self, request: Request, node_id: str) -> Response:
        """GET /<id>?fields=...: Graph answers only the fields the node type has, else error 100 naming the type."""
        fields = [f for f in request.query_params.get("fields", "id").split(",") if f]
        node_type = self._node_type(node_id)
        if node_type == "WhatsAppBusinessAccount":
            values: dict[str, Any] = {"id": node_id, "name": "Loopera WABA", "currency": "USD", "timezone_id": "1"}
        else:
            values = {
                "id": node_id,
                "display_phone_number": self.phone_numbers[node_id],
                "verified_name": "Loopera",
                "quality_rating": "GREEN",
                "code_verification_status": "VERIFIED",
            }
        for name in fields:
            if name not in values:
                message = f"Tried accessing nonexisting field ({name}) on node type ({node_type})"
                return graph_error(100, message).response()
        return JSONResponse({name: values[name] for name in fields})

    async def _media_info(self, request: Request) -> Response:
        media_id = request.path_params["media_id"]
        self._record(Recorded("GET", request.url.path, request.headers.get("authorization")))
        if not self._authorized(request):
            return graph_error(190, "Invalid OAuth access token", 401).response()
        if self._node_type(media_id) is not None:
            return self._node(request, media_id)
        if fault := self.faults.take("media_info"):
            return fault.response()
        if media_id not in self.media:
            return graph_error(100, "Unsupported get request. Object does not exist").response()
        data, mime = self.media[media_id]
        url_id = f"{media_id}-{next(self._ids)}"
        return JSONResponse(
            {
                "messaging_product": "whatsapp",
                "url": f"{self._media_base()}/download/{url_id}",
                "mime_type": mime,
                "sha256": hashlib.sha256(data).hexdigest(),
                "file_size": len(data),
                "id": media_id,
            }
        )

    def _media_base(self) -> str:
        return f"http://{self.media_host}:{self.server.port}" if self.media_host else self.url

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


def _nonexisting_edge(edge: str, node_type: str | None) -> Response:
    if node_type is None:
        return graph_error(100, "Unsupported get request. Object does not exist").response()
    return graph_error(100, f"Tried accessing nonexisting field ({edge}) on node type ({node_type})").response()
