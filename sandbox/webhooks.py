"""The other half of Meta: webhooks, built and signed as Meta sends them.

Envelope and message shapes: https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/payload-examples;
statuses: https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components#statuses-object; the
signature (X-Hub-Signature-256, HMAC-SHA256 of the raw body with the app secret):
https://developers.facebook.com/docs/graph-api/webhooks/getting-started#validate-payloads.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

WABA_ID = "1234567890987654321"
DISPLAY_PHONE_NUMBER = "15550000000"


@dataclass(frozen=True)
class User:
    """A simulated WhatsApp user: a phone number (wa_id), or a username user known only by a business-scoped user
    id (BSUID, `US.<digits>`) with no phone number."""

    wa_id: str | None = None
    user_id: str | None = None
    name: str = "Sandbox User"
    username: str | None = None

    @property
    def address(self) -> str:
        """The conversation key: the wa_id, or the BSUID for a username user (as the API keys it)."""
        return self.wa_id or self.user_id or ""

    def contact(self) -> dict[str, Any]:
        profile: dict[str, Any] = {"name": self.name}
        if self.username:
            profile["username"] = self.username
        contact: dict[str, Any] = {"profile": profile}
        if self.wa_id:
            contact["wa_id"] = self.wa_id
        if self.user_id:
            contact["user_id"] = self.user_id
        return contact

    def sender_fields(self) -> dict[str, Any]:
        if self.wa_id:
            return {"from": self.wa_id}
        return {"from_user_id": self.user_id}


def sign(body: bytes, app_secret: str) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def signed_headers(raw: bytes, app_secret: str) -> dict[str, str]:
    return {"content-type": "application/json", "x-hub-signature-256": sign(raw, app_secret)}


def new_message_id() -> str:
    return f"wamid.sandbox.{uuid.uuid4().hex}"


def _envelope(phone_number_id: str, value: dict[str, Any]) -> dict[str, Any]:
    metadata = {"display_phone_number": DISPLAY_PHONE_NUMBER, "phone_number_id": phone_number_id}
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": WABA_ID,
                "changes": [
                    {"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": metadata, **value}}
                ],
            }
        ],
    }


def message_webhook(
    phone_number_id: str, user: User, message: dict[str, Any], message_id: str | None = None
) -> dict[str, Any]:
    """One inbound message from `user`; `message` holds `type` and its object (see the builders below)."""
    inbound = {
        **user.sender_fields(),
        "id": message_id or new_message_id(),
        "timestamp": str(int(time.time())),
        **message,
    }
    return _envelope(phone_number_id, {"contacts": [user.contact()], "messages": [inbound]})


def status_webhook(
    phone_number_id: str, user: User, wamid: str, status: str, biz_opaque_callback_data: str | None = None
) -> dict[str, Any]:
    """`sent` / `delivered` / `read` for a message the business sent, echoing its biz_opaque_callback_data."""
    item: dict[str, Any] = {"id": wamid, "status": status, "timestamp": str(int(time.time()))}
    if user.wa_id:
        item["recipient_id"] = user.wa_id
    if user.user_id:
        item["recipient_user_id"] = user.user_id
    if status != "read":
        item["pricing"] = {"billable": False, "pricing_model": "PMP", "category": "service"}
    if biz_opaque_callback_data is not None:
        item["biz_opaque_callback_data"] = biz_opaque_callback_data
    return _envelope(phone_number_id, {"contacts": [user.contact()], "statuses": [item]})


def text_message(text: str) -> dict[str, Any]:
    return {"type": "text", "text": {"body": text}}


def media_message(
    kind: str, media_id: str, mime_type: str, sha256: str, caption: str | None = None, voice: bool = False
) -> dict[str, Any]:
    media: dict[str, Any] = {"id": media_id, "mime_type": mime_type, "sha256": sha256}
    if kind == "audio":
        media["voice"] = voice
    if caption:
        media["caption"] = caption
    return {"type": kind, kind: media}


def location_message(latitude: float, longitude: float, name: str = "", address: str = "") -> dict[str, Any]:
    location: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
    if name:
        location["name"] = name
    if address:
        location["address"] = address
    return {"type": "location", "location": location}


def edit_message(original_id: str, text: str, photo: dict[str, Any] | None = None) -> dict[str, Any]:
    """The user edited their message `original_id`: a message of its own (a new id) carrying the new text, or for a
    photo's caption (`photo`: the photo's `image` object as first sent) the photo again with `text` as its caption
    (Meta's example: https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/payload-examples)."""
    new = text_message(text) if photo is None else {"type": "image", "image": {**photo, "caption": text}}
    return {"type": "edit", "edit": {"original_message_id": original_id, "message": new}}


def revoke_message(original_id: str) -> dict[str, Any]:
    """The user deleted their message `original_id` for everyone."""
    return {"type": "revoke", "revoke": {"original_message_id": original_id}}


def reaction_message(target_id: str, emoji: str) -> dict[str, Any]:
    """The user's reaction to message `target_id`; "" removes it
    (https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/payload-examples#reaction-messages)."""
    return {"type": "reaction", "reaction": {"message_id": target_id, "emoji": emoji}}


def _values(body: Any) -> Iterator[dict[str, Any]]:
    """Every `entry[].changes[].value` object of a webhook body, skipping whatever is not shaped like Meta's."""
    entries = body.get("entry") if isinstance(body, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else []:
            value = change.get("value") if isinstance(change, dict) else None
            if isinstance(value, dict):
                yield value


def retarget(body: Any, phone_number_id: str) -> int:
    """Points every `entry[].changes[].value.metadata.phone_number_id` of a webhook body at `phone_number_id`, in
    place, so that a body copied from Meta's docs reaches this run's number. Returns how many it rewrote; leaves
    whatever is not shaped like Meta's envelope as it is (the API judges that)."""
    rewritten = 0
    for value in _values(body):
        metadata = value.get("metadata")
        if isinstance(metadata, dict):
            metadata["phone_number_id"] = phone_number_id
            rewritten += 1
    return rewritten


def carried_messages(body: Any) -> list[tuple[dict[str, Any], list[Any]]]:
    """Every `(message, contacts)` of a webhook body's `value.messages[]`, for showing them on the page."""
    found: list[tuple[dict[str, Any], list[Any]]] = []
    for value in _values(body):
        messages, contacts = value.get("messages"), value.get("contacts")
        for message in messages if isinstance(messages, list) else []:
            if isinstance(message, dict):
                found.append((message, contacts if isinstance(contacts, list) else []))
    return found
