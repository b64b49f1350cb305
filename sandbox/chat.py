"""What the chat page shows: every conversation in order, and the events pushed to open pages (SSE).

Kept in memory: the sandbox is a local toy, restarting it starts over (the bot's own memory lives in Redis).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from sandbox.webhooks import User

Direction = Literal["in", "out"]
# WhatsApp hides the typing indicator after 25 s or when the reply arrives
# (https://developers.facebook.com/docs/whatsapp/cloud-api/typing-indicators).
TYPING_SECONDS = 25


@dataclass
class ChatMessage:
    """One bubble. `status` of an inbound message: sent (queued at the API), read (the bot marked it read) or
    failed (the API refused the webhook); of an outbound one: sent, delivered, read."""

    id: str
    user: str
    direction: Direction
    type: str
    text: str | None = None
    caption: str | None = None
    url: str | None = None
    mime_type: str | None = None
    voice: bool = False
    location: dict[str, Any] | None = None
    reply_to: str | None = None
    status: str = "sent"
    error: str | None = None
    # The bot's reaction to this (inbound) message, e.g. 👀 while it works; "" once taken back.
    reaction: str | None = None
    # The user's reaction to this (outbound) message; "" once taken back.
    user_reaction: str | None = None
    edited: bool = False  # the user edited it: `text` (a photo's `caption`) holds the new words
    deleted: bool = False  # the user deleted it for everyone: its content is gone
    time: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def outbound_message(body: dict[str, Any], wamid: str) -> ChatMessage:
    """A Graph send (https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages) as a bubble."""
    kind = str(body.get("type", "unknown"))
    raw = body.get(kind)
    content: dict[str, Any] = raw if isinstance(raw, dict) else {}
    message = ChatMessage(
        id=wamid,
        user=str(body.get("to") or body.get("recipient") or ""),
        direction="out",
        type=kind,
        reply_to=(body.get("context") or {}).get("message_id"),
    )
    if kind == "text":
        message.text = str(content.get("body", ""))
    elif kind in ("audio", "image", "video", "document", "sticker"):
        media_id = content.get("id")
        message.url = f"/media/{media_id}" if media_id else content.get("link")
        message.voice = bool(content.get("voice"))
        message.caption = content.get("caption")
    elif kind == "location":
        message.location = content
    else:  # templates, interactive, reactions...: show the raw object rather than nothing
        message.text = str(content)
    return message


class ChatStore:
    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self.conversations: dict[str, list[ChatMessage]] = {}
        self.by_id: dict[str, ChatMessage] = {}
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()

    def add(self, message: ChatMessage) -> None:
        self.conversations.setdefault(message.user, []).append(message)
        self.by_id[message.id] = message
        self.publish({"event": "message", "message": message.to_json()})
        if message.direction == "out":
            self.publish({"event": "typing", "user": message.user, "on": False})

    def update(self, message_id: str, **changes: Any) -> ChatMessage | None:
        message = self.by_id.get(message_id)
        if message is None:
            return None
        for name, value in changes.items():
            setattr(message, name, value)
        self.publish({"event": "message", "message": message.to_json()})
        return message

    def reacted(self, body: dict[str, Any]) -> bool:
        """A Graph `reaction` send shown on the message it reacts to, as WhatsApp does, instead of as a bubble
        (https://developers.facebook.com/docs/whatsapp/cloud-api/messages/reaction-messages). False when that
        message is not on the page."""
        reaction = body.get("reaction")
        if not isinstance(reaction, dict):
            return False
        emoji = reaction.get("emoji")
        target = self.update(str(reaction.get("message_id", "")), reaction=emoji if isinstance(emoji, str) else "")
        return target is not None

    def user(self, address: str) -> User:
        """The simulated user behind a conversation (a phone user when the address is digits)."""
        known = self.users.get(address)
        if known is not None:
            return known
        return User(wa_id=address) if address.isdigit() else User(user_id=address)

    def amended(self, sender: str, message: dict[str, Any]) -> ChatMessage | None:
        """A user's `edit`, `revoke` or `reaction` (a message of its own, naming another by id) applied to the bubble
        it names, as WhatsApp shows it: the edited text with an "edited" mark, "deleted", the reaction on the bubble
        (https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/payload-examples). None when it is none of
        those, or names a bubble that is not `sender`'s conversation."""
        kind = message.get("type")
        raw = message.get(str(kind))
        content: dict[str, Any] = raw if isinstance(raw, dict) else {}
        target_id = content.get("message_id" if kind == "reaction" else "original_message_id")
        target = self.by_id.get(str(target_id))
        if kind not in ("edit", "revoke", "reaction") or target is None or target.user != sender:
            return None
        if kind == "reaction":
            emoji = content.get("emoji")
            return self.update(target.id, user_reaction=emoji if isinstance(emoji, str) else "")
        if target.direction != "in":
            return None
        if kind == "revoke":
            return self.update(target.id, deleted=True, text=None, caption=None, url=None, location=None)
        new = content.get("message")
        changes = _edited_fields(target, new if isinstance(new, dict) else {})
        return self.update(target.id, **changes, edited=True) if changes else None

    def marked_read(self, body: dict[str, Any]) -> None:
        """The worker's "mark read" (blue ticks), with its typing indicator when it asked for one. As on WhatsApp,
        the user's earlier messages in the conversation turn read too (the answer to a burst marks only its last):
        https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/mark-message-as-read"""
        message = self.by_id.get(str(body.get("message_id", "")))
        if message is None:
            return
        for earlier in self.conversations.get(message.user, []):
            if earlier is message:
                break
            if earlier.direction == "in" and earlier.status == "sent":
                self.update(earlier.id, status="read")
        self.update(message.id, status="read")
        if body.get("typing_indicator"):
            self.publish({"event": "typing", "user": message.user, "on": True, "seconds": TYPING_SECONDS})

    def conversation(self, address: str) -> list[dict[str, Any]]:
        return [m.to_json() for m in self.conversations.get(address, [])]

    # --- server-sent events ---------------------------------------------------------------------------------
    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers.discard(queue)

    def publish(self, event: dict[str, Any]) -> None:
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:  # a page that stopped reading; it reloads the conversation on reconnect
                self._subscribers.discard(queue)


# What an edit can change, by the edited bubble's type: a text's words, a photo's caption (Meta's edit carries the
# photo again with it). The bubble field, and the key inside the new message's object of that type.
_EDITABLE = {"text": ("text", "body"), "image": ("caption", "caption")}


def _edited_fields(target: ChatMessage, new: dict[str, Any]) -> dict[str, str]:
    """The bubble fields an edit's new message changes; empty when it fits the bubble's type in no way."""
    field, key = _EDITABLE.get(target.type, ("", ""))
    content = new.get(target.type) if field and new.get("type") == target.type else None
    value = content.get(key) if isinstance(content, dict) else None
    return {field: value} if isinstance(value, str) else {}
