"""uvicorn's httptools protocol with a deadline for reading each request.

uvicorn times out idle keep-alive connections, but not a connection that has sent nothing yet, nor a request whose
head or body drips in a byte at a time (slowloris): 1,000 such connections stayed open for over a minute (#16).
The ASGI layer cannot help with the head (the app is only called once the head is complete), so the deadline lives
here: from the moment a connection opens, or a request's first byte arrives, the whole request (head and body)
must be received within `API_READ_TIMEOUT_SECONDS`, or the connection is closed without an answer. The webhook
answers a slow body earlier, with a 408 (`WEBHOOK_BODY_TIMEOUT_SECONDS`, api/webhook.py).

Subclassing relies on uvicorn's protocol hooks (`connection_made`, `on_message_begin`, `on_message_complete`),
which is why uvicorn is pinned exactly in pyproject.toml; tests/integration/test_connection_limits.py checks the
behaviour on a real server.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from shared.config import get_settings


class TimedHttpToolsProtocol(HttpToolsProtocol):
    """Closes a connection whose request is not fully received within the read timeout."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        # Read here, not at import: with `--workers N` each uvicorn process builds its own protocols.
        self._read_timeout = get_settings().api_read_timeout_seconds
        self._read_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_read_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_read_deadline()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_read_deadline()

    def on_message_complete(self) -> None:
        self._cancel_read_deadline()
        super().on_message_complete()

    def _arm_read_deadline(self) -> None:
        if self._read_deadline is None:
            self._read_deadline = self.loop.call_later(self._read_timeout, self._read_timed_out)

    def _cancel_read_deadline(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _read_timed_out(self) -> None:
        self._read_deadline = None
        if not self.transport.is_closing():
            self.transport.close()
