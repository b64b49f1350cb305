"""`POST /api/webhook`: any webhook body (messages, statuses, edits, reactions... as Meta sends them), signed with
this run's app secret and forwarded to the API, so that bodies copied from Meta's docs or from files work against
a sandbox run whose secrets are generated per run.

Signature: X-Hub-Signature-256 over the exact bytes forwarded
(https://developers.facebook.com/docs/graph-api/webhooks/getting-started#validate-payloads).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.chat import ChatMessage
from sandbox.inbound import BadRequestError
from sandbox.webhooks import User, carried_messages, encode, retarget

if TYPE_CHECKING:
    from sandbox.app import Sandbox

MAX_BODY_BYTES = 1024 * 1024  # far above any webhook Meta sends (media travel by id, never inline)


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _sender(message: dict[str, Any], contacts: list[Any]) -> User | None:
    wa_id, user_id = message.get("from"), message.get("from_user_id")
    if not isinstance(wa_id, str) and not isinstance(user_id, str):
        return None
    contact = next((c for c in contacts if isinstance(c, dict)), {})
    found = contact.get("profile")
    profile: dict[str, Any] = found if isinstance(found, dict) else {}
    return User(
        wa_id=wa_id if isinstance(wa_id, str) else None,
        user_id=user_id if isinstance(user_id, str) else None,
        name=str(profile.get("name") or "Sandbox User"),
        username=profile.get("username") if isinstance(profile.get("username"), str) else None,
    )


def _bubble(message: dict[str, Any], user: User) -> ChatMessage | None:
    """A text or location message as the page shows a typed one; None for any other kind."""
    kind, message_id = message.get("type"), message.get("id")
    content = message.get(str(kind))
    if not isinstance(message_id, str) or not isinstance(content, dict):
        return None
    if kind == "text" and isinstance(content.get("body"), str):
        return ChatMessage(message_id, user.address, "in", "text", text=content["body"])
    if kind == "location" and {"latitude", "longitude"} <= content.keys():
        return ChatMessage(message_id, user.address, "in", "location", location=content)
    return None


async def forward(sandbox: Sandbox, request: Request) -> Response:
    """Answers with the API's own status code and body; 400 for a body that is not a JSON object, 413 over 1 MB,
    502 when the API does not answer."""
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        return _error("a webhook body is at most 1 MB", 413)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return _error(f"the body is not JSON ({exc}): send a webhook body as Meta sends it")
    if not isinstance(body, dict):
        return _error('a webhook body is a JSON object: {"object": "whatsapp_business_account", "entry": [...]}')
    retarget(body, sandbox.config.phone_number_id)
    # Shown before the API sees them, as typed ones, so that the bot's read receipt and reply find their bubble.
    amendments: list[tuple[str, dict[str, Any]]] = []
    for message, contacts in carried_messages(body):
        user = _sender(message, contacts)
        if user is None:
            continue
        sandbox.chat.users.setdefault(user.address, user)
        bubble = _bubble(message, user)
        if bubble is not None and bubble.id not in sandbox.chat.by_id:
            sandbox.chat.add(bubble)
        elif bubble is None:
            amendments.append((user.address, message))
    try:
        answer = await sandbox.post_signed(encode(body))
    except BadRequestError as exc:
        return _error(str(exc), exc.status)
    if answer.status_code == 200:
        for address, message in amendments:
            sandbox.chat.amended(address, message)
    return Response(
        answer.content,
        status_code=answer.status_code,
        media_type=answer.headers.get("content-type", "application/json"),
    )
