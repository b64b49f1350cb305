"""The test suite's Graph: the sandbox's own Graph stand-in (`sandbox.graph`) on a loopback port, with programmable
faults and helpers that read what it was sent."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.graph import GraphStandIn, graph_error_body
from sandbox.graph_account import APP_ID, DISPLAY_PHONE_NUMBER, WABA_ID
from sandbox.recorded import Recorded
from sandbox.webhooks import User, encode, signed_headers, status_webhook
from tests.fakes.server import Fault, FaultPlan, LoopbackServer

TOKEN = "test-whatsapp-token"
PHONE_NUMBER_ID = "1122334455667"

__all__ = ["APP_ID", "DISPLAY_PHONE_NUMBER", "PHONE_NUMBER_ID", "TOKEN", "WABA_ID", "GraphFake", "Recorded"]


def graph_error(code: int, message: str = "error", status: int = 400, subcode: int | None = None) -> Fault:
    return Fault(status, graph_error_body(code, message, subcode))


# How a planned send goes wrong on the wire (`GraphFake.answers`): "lose" = Meta accepts the message (it is sent,
# its statuses are reported) and the HTTP answer never arrives; "drop" = the request never reaches Meta and no answer
# arrives either. Both hold the connection until the client's read timeout.
LOSE, DROP = "lose", "drop"


class GraphFake(GraphStandIn):
    def __init__(self, version: str = "v25.0") -> None:
        super().__init__(version, TOKEN, PHONE_NUMBER_ID, app_secret="test-app-secret-0123456789abcdef")
        self.faults = FaultPlan()
        self.server = LoopbackServer(Starlette(routes=self.routes()))
        self.url = self.base_url = self.server.url
        # Like Meta: post each accepted message's statuses (sent, then delivered, or failed), signed, to this
        # webhook URL, echoing the send's biz_opaque_callback_data. None: no statuses.
        self.status_sink: str | None = None
        self.failed_statuses: deque[int] = deque()  # error codes: the next accepted messages are reported failed
        self.answers: deque[str] = deque()  # LOSE / DROP, one per next outbound message
        self.hold_seconds = 8.0  # how long a lost answer holds its connection (above the workers' Graph timeout)
        self.posted_statuses: list[dict[str, Any]] = []
        self.status_delay = 0.0  # seconds before the first status is posted (Meta's are not instant)

    async def _messages(self, request: Request) -> Response:
        body = await request.json()  # cached by Starlette: the stand-in reads it again
        plan = self.answers.popleft() if self.answers and "type" in body else None
        if plan == DROP:
            self._record(Recorded("POST", request.url.path, request.headers.get("authorization"), {"dropped": body}))
            await asyncio.sleep(self.hold_seconds)
            return JSONResponse({"error": "gone"}, status_code=504)
        response = await super()._messages(request)
        if plan == LOSE:
            await asyncio.sleep(self.hold_seconds)
        return response

    def report_statuses(self, body: dict[str, Any], wamid: str) -> None:
        """`on_send` while `status_sink` is set: the statuses Meta would post for this message, in a thread."""
        sink = self.status_sink
        if sink is None:
            return
        code = self.failed_statuses.popleft() if self.failed_statuses else None
        to = body.get("to") or ""
        user = User(wa_id=to) if to.isdigit() else User(user_id=body.get("recipient") or to)
        data = body.get("biz_opaque_callback_data")

        delay = self.status_delay

        def post() -> None:
            time.sleep(delay)
            for status in ("sent", "failed") if code is not None else ("sent", "delivered"):
                payload = status_webhook(self.phone_number_id, user, wamid, status, data)
                if status == "failed":
                    item = payload["entry"][0]["changes"][0]["value"]["statuses"][0]
                    item["errors"] = [{"code": code, "title": "Re-engagement message"}]
                raw = encode(payload)
                answer = httpx.post(sink, content=raw, headers=signed_headers(raw, self.app_secret), timeout=10)
                with self._lock:
                    self.posted_statuses.append({"status": status, "data": data, "answer": answer.status_code})

        threading.Thread(target=post, daemon=True).start()

    def fault(self, route: str) -> Response | None:
        fault = self.faults.take(route)
        return fault.response() if fault is not None else None

    # --- test API ---------------------------------------------------------------------------------------
    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.media.clear()
            self.expired_media_urls.clear()
        self.media_host = None
        self.media_origin = None
        self.upload_delay = 0.0
        self.faults.clear()
        self.status_sink = None
        self.failed_statuses.clear()
        self.answers.clear()
        self.posted_statuses = []
        self.status_delay = 0.0
        self.on_send = self.report_statuses
        self.init_account()

    def sent_messages(self) -> list[dict[str, Any]]:
        """Outbound messages (not read receipts), in the order Graph accepted them."""
        with self._lock:
            return [r.json for r in self.requests if r.path.endswith("/messages") and "type" in (r.json or {})]

    def meta_id_of(self, sent: dict[str, Any]) -> str:
        """The id Graph answered for `sent` (a message from `sent_messages()`)."""
        with self._lock:
            return next(str(r.meta_id) for r in self.requests if r.json is sent and r.meta_id)

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
