"""What a user does to messages already in the chat: edit or delete their own, react to the bot's. Each is a
message of its own (a new id) that names the other, sent as Meta's webhook
(https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/payload-examples); the bubble changes once the
API accepted it."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import emoji
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox.chat import ChatMessage
from sandbox.inbound import MAX_TEXT_CHARS, BadRequestError, json_object, parse_text
from sandbox.webhooks import edit_message, new_message_id, reaction_message, revoke_message

if TYPE_CHECKING:
    from sandbox.app import Sandbox

# https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages (media object: caption, 1024 characters)
MAX_CAPTION_CHARS = 1024


def _target(sandbox: Sandbox, request: Request) -> ChatMessage:
    target = sandbox.chat.by_id.get(request.path_params["message_id"])
    if target is None:
        raise BadRequestError("no such message in the sandbox's chat", 404)
    return target


def _own_message(sandbox: Sandbox, request: Request) -> ChatMessage:
    target = _target(sandbox, request)
    if target.direction != "in":
        raise BadRequestError("only the user's own messages can be edited or deleted")
    if target.deleted:
        raise BadRequestError("that message was deleted")
    return target


async def _send(sandbox: Sandbox, target: ChatMessage, message: dict[str, Any]) -> Response:
    """Sends `message` from the owner of `target`'s conversation and shows its effect on `target`'s bubble."""
    message_id = new_message_id()
    await sandbox.send_message(sandbox.chat.user(target.user), message, message_id)
    sandbox.chat.amended(target.user, message)
    return JSONResponse({"message_id": message_id, "message": target.to_json()}, status_code=202)


async def edit(sandbox: Sandbox, request: Request) -> Response:
    """`POST /api/messages/<id>/edit` `{"text": "..."}`: the user edits their text message, or the caption of
    their photo (Meta then sends the photo again with the new caption)."""
    target = _own_message(sandbox, request)
    if target.type not in ("text", "image") or (target.type == "image" and not target.caption):
        raise BadRequestError("only text messages and photo captions can be edited")
    limit = MAX_TEXT_CHARS if target.type == "text" else MAX_CAPTION_CHARS
    text = parse_text((await json_object(request)).get("text"), "give the edited message", limit)
    photo = _photo_of(sandbox, target) if target.type == "image" else None
    return await _send(sandbox, target, edit_message(target.id, text, photo))


def _photo_of(sandbox: Sandbox, target: ChatMessage) -> dict[str, Any]:
    """The `image` object the photo was first sent with (its media id is in the bubble's `/media/<id>` url)."""
    media_id = (target.url or "").removeprefix("/media/")
    stored = sandbox.graph.media.get(media_id)
    if stored is None:
        raise BadRequestError("that photo is no longer in the sandbox", 404)
    data, mime_type = stored
    return {"id": media_id, "mime_type": mime_type, "sha256": hashlib.sha256(data).hexdigest()}


async def delete(sandbox: Sandbox, request: Request) -> Response:
    """`POST /api/messages/<id>/delete`: the user deletes their message for everyone (Meta's `revoke`)."""
    target = _own_message(sandbox, request)
    return await _send(sandbox, target, revoke_message(target.id))


async def react(sandbox: Sandbox, request: Request) -> Response:
    """`POST /api/messages/<id>/reaction` `{"emoji": "👍"}` (`""` removes it): the user reacts to a bot message."""
    target = _target(sandbox, request)
    if target.direction != "out":
        raise BadRequestError("react to one of the bot's messages")
    reaction = (await json_object(request)).get("emoji")
    # One emoji as Unicode defines them (skin tones, joined sequences, flags and keycaps included): "👍🏽", not "👍👍".
    if not isinstance(reaction, str) or (reaction and not emoji.is_emoji(reaction)):
        raise BadRequestError('`emoji` must be one emoji, or "" to remove the reaction')
    return await _send(sandbox, target, reaction_message(target.id, reaction))
