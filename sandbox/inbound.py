"""What the page (or a script) says about a message, checked: who sends it, and a location. Raises BadRequestError
with a sentence the page shows as is."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request

from sandbox.webhooks import User

MAX_TEXT_CHARS = 4096  # WhatsApp's limit for one text message
PHONE = re.compile(r"^\d{6,15}$")
BSUID = re.compile(r"^[A-Z]{2}\.[A-Za-z0-9.]{1,64}$")  # business-scoped user id, e.g. US.13491208655302741918


class BadRequestError(ValueError):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


async def json_object(request: Request, not_json: str = "send a JSON object") -> dict[str, Any]:
    """The request's body as a JSON object; BadRequestError (`not_json` when it is not JSON at all) otherwise."""
    try:
        payload = await request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequestError(not_json) from exc
    if not isinstance(payload, dict):
        raise BadRequestError("send a JSON object")
    return payload


def parse_text(value: Any, empty_hint: str, limit: int = MAX_TEXT_CHARS) -> str:
    """The `text` field: a string with something in it, at most `limit` characters. Raises BadRequestError."""
    if not isinstance(value, str):
        raise BadRequestError("`text` must be a string")
    if not value.strip():
        raise BadRequestError(f"`text` is empty: {empty_hint}")
    if len(value) > limit:
        raise BadRequestError(f"`text` is longer than WhatsApp's {limit} characters")
    return value


def parse_user(payload: dict[str, Any]) -> User:
    """`from` (digits: a phone user) or `user_id` (a BSUID: a username user without a phone number)."""
    name = str(payload.get("name") or "Sandbox User")[:60]
    sender = payload.get("from")
    if isinstance(sender, str) and sender:
        if not PHONE.match(sender):
            raise BadRequestError("`from` must be a phone number in digits, 6 to 15 of them (e.g. 15550001111)")
        return User(wa_id=sender, name=name)
    user_id = payload.get("user_id")
    if isinstance(user_id, str) and user_id:
        if not BSUID.match(user_id):
            raise BadRequestError("`user_id` must be a business-scoped user id such as US.13491208655302741918")
        username = payload.get("username")
        return User(user_id=user_id, name=name, username=str(username)[:35] if username else None)
    raise BadRequestError("say who sends it: `from` (phone digits) or `user_id` (a username user's BSUID)")


def parse_location(raw: dict[str, Any]) -> dict[str, Any]:
    try:
        latitude, longitude = float(raw["latitude"]), float(raw["longitude"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BadRequestError("`location` needs numeric `latitude` and `longitude`") from exc
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise BadRequestError("`location` is outside the globe")
    return {
        "latitude": latitude,
        "longitude": longitude,
        "name": str(raw.get("name") or "")[:200],
        "address": str(raw.get("address") or "")[:300],
    }
