"""Build and sign webhook bodies the way Meta sends them."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path
from typing import Any

from shared.identity import Sender, conversation_for
from shared.ledger import DEVELOPMENT_MESSAGE_KEY, hashing_key
from tests.fakes.graph_fake import PHONE_NUMBER_ID

FIXTURES = Path(__file__).resolve().parent / "fixtures"
WEBHOOK_FIXTURES = FIXTURES / "meta-webhooks"
MEDIA_FIXTURES = FIXTURES / "media"
CASE_FIXTURES = FIXTURES / "cases"
APP_SECRET = "test-app-secret-0123456789abcdef"
VERIFY_TOKEN = "test-verify-token"


def conversation_of(
    phone: str | None = None, user_id: str | None = None, group_id: str | None = None, api_key: bool = True
) -> str:
    """The conversation id a first message of this sender gets (shared/identity.py): with the services' key
    (derived from APP_SECRET) for the real API, or the development key for `parse_webhook` called without one."""
    key = hashing_key("", APP_SECRET) if api_key else DEVELOPMENT_MESSAGE_KEY
    return Sender.of(phone, user_id, group_id, key).candidate


def conversation_in(client: Any, identifier: str) -> str:
    """The conversation a person (phone number or BSUID) has in the services' Redis, through their identity link
    (shared/identity.py), as `loopera user` and `loopera handoff` find it."""
    return conversation_for(client, identifier, hashing_key("", APP_SECRET))


def fixture_file(name: str) -> dict[str, dict[str, Any]]:
    data: dict[str, dict[str, Any]] = json.loads((WEBHOOK_FIXTURES / f"{name}.json").read_text())
    return data


def all_fixture_bodies() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{path.stem}/{scenario}", body)
        for path in sorted(WEBHOOK_FIXTURES.glob("*.json"))
        for scenario, body in json.loads(path.read_text()).items()
    ]


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def fresh_ids(body: dict[str, Any], sender: str | None = None) -> dict[str, Any]:
    """A copy with unique message ids, a current timestamp (fixtures all share `wamid.xyzxyz`) and our phone
    number id (some fixtures carry `<BUSINESS_PHONE_NUMBER_ID>` placeholders)."""
    body = copy.deepcopy(body)
    for entry in body.get("entry", []):
        for change in entry.get("changes", []):
            value = change.get("value", {})
            if isinstance(value.get("metadata"), dict):
                value["metadata"]["phone_number_id"] = PHONE_NUMBER_ID
            for message in value.get("messages", []) or []:
                message["id"] = f"wamid.{uuid.uuid4().hex}"
                message["timestamp"] = str(int(time.time()))
                if sender and "from" in message:
                    message["from"] = sender
                if sender and "from_user_id" in message:
                    message["from_user_id"] = f"US.{sender}"  # the same person as `from`, by BSUID
            if sender:
                for contact in value.get("contacts", []) or []:
                    contact["wa_id"] = sender
                    if "user_id" in contact:
                        contact["user_id"] = f"US.{sender}"
    return body


def message_body(messages: list[dict[str, Any]], sender: str = "15550001111", name: str = "Test User") -> dict:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "1234567890987654321",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
                            "contacts": [{"profile": {"name": name}, "wa_id": sender}],
                            "messages": messages,
                        },
                    }
                ],
            }
        ],
    }


def user_message(sender: str, kind: str, content: dict[str, Any], message_id: str | None = None) -> dict[str, Any]:
    """One message of type `kind` from `sender`, sent now, with a fresh wamid: Meta's message object, whose
    `content` sits under the key named by its type."""
    return {
        "from": sender,
        "id": message_id or f"wamid.{uuid.uuid4().hex}",
        "timestamp": str(int(time.time())),
        "type": kind,
        kind: content,
    }


def text_message(text: str, sender: str = "15550001111", message_id: str | None = None) -> dict[str, Any]:
    return user_message(sender, "text", {"body": text}, message_id)


def media_message(sender: str, kind: str, media_id: str, mime_type: str, caption: str = "") -> dict[str, Any]:
    """A photo (`image`) or voice note (`audio`, sent as a voice note) by its media id, as Meta sends it."""
    media: dict[str, Any] = {"id": media_id, "mime_type": mime_type, "sha256": "x"}
    if caption:
        media["caption"] = caption
    if kind == "audio":
        media["voice"] = True
    return user_message(sender, kind, media)


# The fixture file, the mime type Graph stores and the one Meta's webhook names, of each kind of media a test sends.
MEDIA_SAMPLES = {
    "audio": ("voice-en.ogg", "audio/ogg", "audio/ogg; codecs=opus"),
    "image": ("photo.jpg", "image/jpeg", "image/jpeg"),
}


def served_media_message(graph: Any, sender: str, kind: str, caption: str = "") -> dict[str, Any]:
    """A voice note (`audio`) or photo (`image`) from the fixtures, put on the Graph fake `graph` (its `add_media`)
    under a fresh media id, and Meta's message carrying it."""
    file_name, stored_type, message_type = MEDIA_SAMPLES[kind]
    media_id = f"media-{uuid.uuid4().hex[:8]}"
    graph.add_media(media_id, (MEDIA_FIXTURES / file_name).read_bytes(), stored_type)
    return media_message(sender, kind, media_id, message_type, caption=caption)


def edit_message(sender: str, original_id: str, words: str, media: dict[str, Any] | None = None) -> dict[str, Any]:
    """Meta's `edit` of an earlier message, carrying the new text; for a caption (`media`: the original photo, video
    or document message), the media again with `words` as its caption (fixture: edited_message.json's shape)."""
    new = {"type": "text", "text": {"body": words}}
    if media is not None:
        kind = media["type"]
        new = {"type": kind, kind: {**media[kind], "caption": words}}
    return user_message(sender, "edit", {"original_message_id": original_id, "message": new})


def revoke_message(sender: str, original_id: str) -> dict[str, Any]:
    """Meta's `revoke`: the user deleted an earlier message for everyone (fixture: deleted_message.json's shape)."""
    return user_message(sender, "revoke", {"original_message_id": original_id})


def reaction_message(sender: str, target_id: str, emoji: str) -> dict[str, Any]:
    """A reaction to message `target_id` ("" emoji: the reaction removed)."""
    return user_message(sender, "reaction", {"message_id": target_id, "emoji": emoji})


def encode(body: dict[str, Any], ascii_only: bool = True) -> bytes:
    """Meta escapes non-ASCII (`\\u00e9`); `ascii_only=False` sends raw UTF-8 bytes instead."""
    return json.dumps(body, ensure_ascii=ascii_only, separators=(",", ":")).encode()


def signed_headers(raw: bytes) -> dict[str, str]:
    return {"content-type": "application/json", "x-hub-signature-256": sign(raw)}
