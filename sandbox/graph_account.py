"""Graph's account plumbing as `loopera doctor` and `loopera subscribe` read it: debug_token, a WABA's
subscribed_apps and phone_numbers, and node fields (Graph API reference: WhatsApp Business Account,
https://developers.facebook.com/docs/graph-api/reference/whats-app-business-account/)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox.recorded import Recorded

WABA_ID = "1234567890987654321"
APP_ID = "987654321012345"
DISPLAY_PHONE_NUMBER = "+1 555-078-3881"


def _error(code: int, message: str, status: int = 400) -> Response:
    body = {"error": {"message": f"(#{code}) {message}", "type": "OAuthException", "code": code, "fbtrace_id": "A"}}
    return JSONResponse(body, status_code=status)


class GraphAccount:
    """One app, one WABA and one phone number, owned by one System User token."""

    def __init__(self, token: str, phone_number_id: str, app_secret: str = "") -> None:
        self.token = token
        self.phone_number_id = phone_number_id
        self._initial_app_secret = app_secret
        self.init_account()

    # Provided by the message/media half (sandbox.graph.GraphStandIn).
    def fault(self, route: str) -> Response | None:
        return None

    def _authorized(self, request: Request) -> bool:
        raise NotImplementedError

    def _record(self, item: Recorded) -> None:
        raise NotImplementedError

    def init_account(self) -> None:
        # What debug_token says about the token: valid, never expires (a System User token), both WhatsApp scopes.
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
        self.app_secret = self._initial_app_secret
        self.wabas: dict[str, list[str]] = {WABA_ID: [self.phone_number_id]}
        self.phone_numbers: dict[str, str] = {self.phone_number_id: DISPLAY_PHONE_NUMBER}
        # WABA id -> subscribed apps entries, as GET /<WABA_ID>/subscribed_apps lists them.
        self.subscriptions: dict[str, list[dict[str, Any]]] = {}
        # The app's WhatsApp webhook subscription, as GET /<APP_ID>/subscriptions lists it (Graph API reference:
        # Application subscriptions); only `messages` until `loopera subscribe` adds smb_message_echoes.
        self.webhook_fields: list[str] = ["messages"]
        self.webhook_callback = "https://bot.example.com/webhook"

    def account_routes(self, base: str) -> list[Route]:
        # Before the catch-all node route (GET /<version>/<id>).
        return [
            Route(base + "/debug_token", self._debug_token, methods=["GET"]),
            Route(base + "/{waba_id}/subscribed_apps", self._subscribed_apps, methods=["GET", "POST"]),
            Route(base + "/{waba_id}/phone_numbers", self._phone_numbers, methods=["GET"]),
            Route(base + "/{app_id}/subscriptions", self._app_subscriptions, methods=["GET", "POST"]),
        ]

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

    def node_type(self, node_id: str) -> str | None:
        if node_id in self.wabas:
            return "WhatsAppBusinessAccount"
        if node_id in self.phone_numbers:
            return "WhatsAppBusinessPhoneNumber"
        return None

    def node(self, request: Request, node_id: str) -> Response:
        """GET /<id>?fields=...: Graph answers only the fields the node type has, else error 100 naming the type."""
        fields = [f for f in request.query_params.get("fields", "id").split(",") if f]
        node_type = self.node_type(node_id)
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
                return _error(100, f"Tried accessing nonexisting field ({name}) on node type ({node_type})")
        return JSONResponse({name: values[name] for name in fields})

    async def _debug_token(self, request: Request) -> Response:
        self._record(Recorded("GET", request.url.path, None))
        # Authenticated by an app access token `<app_id>|<app_secret>`, not the user token being inspected.
        if request.query_params.get("access_token") != f"{APP_ID}|{self.app_secret}":
            return _error(190, "Invalid OAuth access token signature.")
        if request.query_params.get("input_token") != self.token:
            invalid = {"code": 190, "message": "Invalid OAuth access token.", "subcode": 0}
            return JSONResponse({"data": {"error": invalid, "is_valid": False, "scopes": []}})
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
            return _error(190, "Error validating access token: Session has expired", 401)
        if (fault := self.fault("subscribed_apps")) is not None:
            return fault
        if waba_id not in self.wabas:
            return _error(100, "Unsupported get request. Object does not exist")
        if request.method == "GET":
            return JSONResponse({"data": self.subscriptions.get(waba_id, [])})
        uri = body.get("override_callback_uri")
        if uri is not None and (len(uri) > 200 or not body.get("verify_token")):
            return _error(100, "Invalid parameter")
        self.subscribe_app(waba_id, uri)
        return JSONResponse({"success": True})

    async def _app_subscriptions(self, request: Request) -> Response:
        params: dict[str, Any] = dict(request.query_params)
        if request.method == "POST":
            params |= {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        self._record(Recorded(request.method, request.url.path, None, params))
        # Authenticated by an app access token `<app_id>|<app_secret>`, like debug_token.
        if request.path_params["app_id"] != APP_ID or params.get("access_token") != f"{APP_ID}|{self.app_secret}":
            return _error(190, "Invalid OAuth access token")
        if request.method == "POST":
            if params.get("object") != "whatsapp_business_account" or not params.get("verify_token"):
                return _error(100, "Invalid parameter")
            self.webhook_callback = params.get("callback_url", self.webhook_callback)
            self.webhook_fields = [f for f in str(params.get("fields", "")).split(",") if f]
            return JSONResponse({"success": True})
        version = request.url.path.strip("/").split("/", 1)[0]
        fields = [{"name": name, "version": version} for name in self.webhook_fields]
        item = {"object": "whatsapp_business_account", "callback_url": self.webhook_callback, "active": True}
        return JSONResponse({"data": [item | {"fields": fields}]})

    async def _phone_numbers(self, request: Request) -> Response:
        waba_id = request.path_params["waba_id"]
        self._record(Recorded("GET", request.url.path, request.headers.get("authorization")))
        if not self._authorized(request):
            return _error(190, "Error validating access token: Session has expired", 401)
        if waba_id not in self.wabas:
            node_type = self.node_type(waba_id)
            if node_type is None:
                return _error(100, "Unsupported get request. Object does not exist")
            return _error(100, f"Tried accessing nonexisting field (phone_numbers) on node type ({node_type})")
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
