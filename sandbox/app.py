"""The sandbox's one HTTP server: the chat page, its JSON API and push events, and the Graph stand-in.

Everything the page sends becomes a signed webhook to the API's `POST /webhook`, exactly as Meta would send it;
the bot's answers arrive as Graph calls from the workers. Nothing here reaches into the service another way.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from sandbox import raw_webhook, user_actions
from sandbox.chat import ChatMessage, ChatStore, outbound_message
from sandbox.config import SandboxConfig
from sandbox.graph import GraphStandIn
from sandbox.inbound import BadRequestError, json_object, parse_location, parse_text, parse_user
from sandbox.uploads import MAX_UPLOAD_BYTES, UploadError, prepare
from sandbox.webhooks import (
    User,
    encode,
    location_message,
    media_message,
    message_webhook,
    new_message_id,
    signed_headers,
    status_webhook,
    text_message,
)
from shared.logging import get_logger

log = get_logger(__name__)
STATIC = Path(__file__).parent / "static"
# Multipart framing around the file: a little over the largest file still parses, a 50 MB upload does not.
MAX_BODY_BYTES = MAX_UPLOAD_BYTES + 64 * 1024
STATUS_STEP_SECONDS = 0.3


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class Sandbox:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.chat = ChatStore()
        self.graph = GraphStandIn(config.graph_version, config.token, config.phone_number_id)
        self.graph.base_url = f"http://127.0.0.1:{config.port}"
        self.graph.max_recorded = 100  # a long session must not keep every uploaded voice note twice
        self.graph.on_send = self._bot_sent
        self.graph.on_read = self.chat.marked_read
        self._http: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = asyncio.Event()

    # --- webhooks to the API ----------------------------------------------------------------------------
    async def _post_webhook(self, body: dict[str, Any]) -> httpx.Response:
        assert self._http is not None
        raw = encode(body)
        return await self._http.post(
            f"{self.config.api_url}/webhook", content=raw, headers=signed_headers(raw, self.config.app_secret)
        )

    async def post_signed(self, raw: bytes) -> httpx.Response:
        """POSTs `raw` to the API's /webhook, signed as Meta signs it; BadRequestError (502) when nothing answers."""
        assert self._http is not None
        try:
            return await self._http.post(
                f"{self.config.api_url}/webhook", content=raw, headers=signed_headers(raw, self.config.app_secret)
            )
        except httpx.HTTPError as exc:
            raise BadRequestError(
                f"the API at {self.config.api_url} did not answer ({type(exc).__name__}): is it running?", 502
            ) from exc

    async def send_inbound(self, user: User, message: dict[str, Any], bubble: ChatMessage) -> ChatMessage:
        self.chat.users[user.address] = user
        self.chat.add(bubble)
        await self.send_message(user, message, bubble.id, failed=bubble.id)
        return bubble

    async def send_message(
        self, user: User, message: dict[str, Any], message_id: str, failed: str | None = None
    ) -> None:
        """One message from `user` as Meta's webhook; BadRequestError (502) unless the API accepts it (200), after
        marking bubble `failed` (when given) as failed."""
        body = message_webhook(self.config.phone_number_id, user, message, message_id)
        try:
            answer = await self.post_signed(encode(body))
        except BadRequestError:
            if failed:
                self.chat.update(failed, status="failed", error="the API did not answer")
            raise
        if answer.status_code != 200:
            if failed:
                self.chat.update(failed, status="failed", error=f"the API answered {answer.status_code}")
            raise BadRequestError(f"the API answered {answer.status_code}: {answer.text[:200]}", 502)

    @property
    def reporting(self) -> bool:
        """True while status webhooks of earlier sends are still on their way (tests wait for quiet)."""
        return bool(self._tasks)

    def _bot_sent(self, body: dict[str, Any], wamid: str) -> None:
        if body.get("type") == "reaction" and self.chat.reacted(body):
            return  # shown on the message it reacts to
        message = outbound_message(body, wamid)
        self.chat.add(message)
        user = self.chat.user(message.user)
        task = asyncio.get_running_loop().create_task(
            self._report_statuses(user, wamid, body.get("biz_opaque_callback_data"))
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _report_statuses(self, user: User, wamid: str, callback_data: str | None) -> None:
        """Meta reports every accepted send as sent, then delivered, then read (the page shows it at once)."""
        for status in ("sent", "delivered", "read"):
            await asyncio.sleep(STATUS_STEP_SECONDS)
            self.chat.update(wamid, status=status)
            try:
                answer = await self._post_webhook(
                    status_webhook(self.config.phone_number_id, user, wamid, status, callback_data)
                )
                if answer.status_code != 200:
                    log.warning("sandbox.status_refused", status=status, code=answer.status_code)
            except httpx.HTTPError as exc:
                log.warning("sandbox.status_failed", status=status, error=type(exc).__name__)

    # --- the page's JSON API ----------------------------------------------------------------------------
    async def post_message(self, request: Request) -> Response:
        try:
            if request.headers.get("content-type", "").startswith("multipart/form-data"):
                bubble = await self._post_media(request)
            else:
                bubble = await self._post_json(request)
        except BadRequestError as exc:
            return _error(str(exc), exc.status)
        except UploadError as exc:
            return _error(str(exc), exc.status)
        return JSONResponse({"message_id": bubble.id, "message": bubble.to_json()}, status_code=202)

    async def _post_json(self, request: Request) -> ChatMessage:
        payload = await json_object(request, "send JSON, or multipart with a `file`")
        user = parse_user(payload)
        message_id = new_message_id()
        if isinstance(payload.get("location"), dict):
            location = parse_location(payload["location"])
            bubble = ChatMessage(message_id, user.address, "in", "location", location=location)
            message = location_message(**location)
        else:
            text = parse_text(payload.get("text"), "type a message (or send `location`, or a file)")
            bubble = ChatMessage(message_id, user.address, "in", "text", text=text)
            message = text_message(text)
        return await self.send_inbound(user, message, bubble)

    async def _post_media(self, request: Request) -> ChatMessage:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise BadRequestError(f"the file is larger than WhatsApp's {MAX_UPLOAD_BYTES // 2**20} MB", 413)
        try:
            async with request.form(max_files=1, max_fields=10) as form:
                upload = form.get("file")
                if not isinstance(upload, UploadFile):
                    raise BadRequestError("multipart needs a `file` (a photo or audio)")
                data = await upload.read(MAX_UPLOAD_BYTES + 1)
                if len(data) > MAX_UPLOAD_BYTES:
                    raise BadRequestError(f"the file is larger than WhatsApp's {MAX_UPLOAD_BYTES // 2**20} MB", 413)
                fields = {k: v for k, v in form.items() if isinstance(v, str)}
        except HTTPException as exc:  # Starlette's answer to a malformed form (two files, too many fields)
            raise BadRequestError(f"the upload could not be read: {exc.detail}") from None
        user = parse_user(fields)
        caption = fields.get("caption", "").strip() or None
        if not data:
            raise BadRequestError("the file is empty")
        media = await prepare(
            data, voice=fields.get("voice", "").lower() in ("1", "true", "yes"), ffmpeg=self.config.ffmpeg
        )
        media_id = f"sandbox-media-{self.graph.next_id()}"
        self.graph.add_media(media_id, media.data, media.mime_type)
        sha256 = hashlib.sha256(media.data).hexdigest()
        caption = caption if media.kind == "image" else None  # WhatsApp audio carries no caption
        message = media_message(media.kind, media_id, media.mime_type, sha256, caption, voice=media.voice)
        bubble = ChatMessage(
            new_message_id(),
            user.address,
            "in",
            media.kind,
            caption=caption,
            url=f"/media/{media_id}",
            mime_type=media.mime_type,
            voice=media.voice,
        )
        return await self.send_inbound(user, message, bubble)

    def _action(self, handler: Callable[[Sandbox, Request], Awaitable[Response]]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(self, request)
            except BadRequestError as exc:
                return _error(str(exc), exc.status)

        return endpoint

    async def conversation(self, request: Request) -> Response:
        return JSONResponse({"messages": self.chat.conversation(request.path_params["address"])})

    async def media(self, request: Request) -> Response:
        item = self.graph.media.get(request.path_params["media_id"])
        if item is None:
            return _error("no such media", 404)
        data, mime = item
        return Response(data, media_type=mime, headers={"cache-control": "private, max-age=3600"})

    async def info(self, _: Request) -> Response:
        missing = ["GROQ_API_KEY"] if self.config.groq_key_missing else []
        return JSONResponse(
            {"missing": missing, "api_url": self.config.api_url, "graph_version": self.config.graph_version}
        )

    async def health(self, _: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def events(self, request: Request) -> Response:
        queue = self.chat.subscribe()

        async def stream() -> AsyncIterator[str]:
            try:
                yield "retry: 1000\n\n"
                while not self._closing.is_set() and not await request.is_disconnected():
                    try:
                        event = await asyncio.wait_for(queue.get(), timeout=10)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                    yield f"data: {json.dumps(event)}\n\n"
            finally:
                self.chat.unsubscribe(queue)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"cache-control": "no-store"})

    async def index(self, _: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-store"})

    # --- the application ------------------------------------------------------------------------------
    @asynccontextmanager
    async def lifespan(self, _: Starlette) -> AsyncIterator[None]:
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(15.0, connect=5.0))
        log.info("sandbox.started", port=self.config.port, api_url=self.config.api_url)
        try:
            yield
        finally:
            self._closing.set()
            for task in list(self._tasks):
                task.cancel()
            await self._http.aclose()

    def app(self) -> Starlette:
        routes = [
            Route("/", self.index, methods=["GET"]),
            Route("/api/health", self.health, methods=["GET"]),
            Route("/api/info", self.info, methods=["GET"]),
            Route("/api/messages", self.post_message, methods=["POST"]),
            Route("/api/messages/{message_id}/edit", self._action(user_actions.edit), methods=["POST"]),
            Route("/api/messages/{message_id}/delete", self._action(user_actions.delete), methods=["POST"]),
            Route("/api/messages/{message_id}/reaction", self._action(user_actions.react), methods=["POST"]),
            Route("/api/webhook", self._action(raw_webhook.forward), methods=["POST"]),
            Route("/api/conversations/{address}", self.conversation, methods=["GET"]),
            Route("/api/events", self.events, methods=["GET"]),
            Route("/media/{media_id}", self.media, methods=["GET"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
            *self.graph.routes(),
        ]
        return Starlette(routes=routes, lifespan=self.lifespan)


def create_app(config: SandboxConfig) -> Starlette:
    return Sandbox(config).app()
