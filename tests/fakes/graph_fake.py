"""The test suite's Graph: the sandbox's own Graph stand-in (`sandbox.graph`) on a loopback port, with programmable
faults and helpers that read what it was sent."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.responses import Response

from sandbox.graph import GraphStandIn, graph_error_body
from sandbox.graph_account import APP_ID, DISPLAY_PHONE_NUMBER, WABA_ID
from sandbox.recorded import Recorded
from tests.fakes.server import Fault, FaultPlan, LoopbackServer

TOKEN = "test-whatsapp-token"
PHONE_NUMBER_ID = "1122334455667"

__all__ = ["APP_ID", "DISPLAY_PHONE_NUMBER", "PHONE_NUMBER_ID", "TOKEN", "WABA_ID", "GraphFake", "Recorded"]


def graph_error(code: int, message: str = "error", status: int = 400, subcode: int | None = None) -> Fault:
    return Fault(status, graph_error_body(code, message, subcode))


class GraphFake(GraphStandIn):
    def __init__(self, version: str = "v25.0") -> None:
        super().__init__(version, TOKEN, PHONE_NUMBER_ID, app_secret="test-app-secret-0123456789abcdef")
        self.faults = FaultPlan()
        self.server = LoopbackServer(Starlette(routes=self.routes()))
        self.url = self.base_url = self.server.url

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
