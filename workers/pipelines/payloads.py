"""Read the parts of a WhatsApp message the handlers need, defensively: payloads are Meta's (types evolve) or
forged, so a field of the wrong shape reads as missing instead of crashing the job."""

from __future__ import annotations

from typing import Any


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def user_text(message: dict[str, Any]) -> str | None:
    """The words of a message that counts as text: typed text, interactive button/list replies and template
    quick replies (their title, or payload when there is no title)."""
    kind = message.get("type")
    if kind == "text":
        body = as_dict(message.get("text")).get("body")
        return body if isinstance(body, str) and body.strip() else None
    if kind == "interactive":
        interactive = as_dict(message.get("interactive"))
        reply = interactive.get("button_reply") or interactive.get("list_reply")
        if isinstance(reply, dict):
            title, description = reply.get("title") or reply.get("id"), reply.get("description")
            return f"{title} ({description})" if description else str(title) if title else None
        return None
    if kind == "button":
        button = as_dict(message.get("button"))
        value = button.get("text") or button.get("payload")
        return str(value) if value else None
    return None


def describe_location(message: dict[str, Any]) -> str:
    """Name, address, coordinates and map link as one line of text for the model."""
    location = as_dict(message.get("location"))
    parts = [str(location[k]) for k in ("name", "address") if location.get(k)]
    latitude, longitude = location.get("latitude"), location.get("longitude")
    if latitude is not None and longitude is not None:
        parts.append(f"coordinates {latitude}, {longitude}")
    if location.get("url"):
        parts.append(str(location["url"]))
    return "; ".join(parts) or "no details"


def contact_names(message: dict[str, Any]) -> list[str]:
    """Shared contacts' display names. Only names: third parties' phone numbers are nobody's business here."""
    names: list[str] = []
    for card in dicts(message.get("contacts")):
        name = as_dict(card.get("name"))
        formatted = name.get("formatted_name") or " ".join(
            str(name[k]) for k in ("first_name", "last_name") if name.get(k)
        )
        names.append(str(formatted) or "?")
    return names


def order_summary(message: dict[str, Any]) -> tuple[str, str]:
    """("3x HAMBURGER, 2x SODA", the order's note)."""
    order = as_dict(message.get("order"))
    items = dicts(order.get("product_items"))
    listed = ", ".join(f"{i.get('quantity', 1)}x {i.get('product_retailer_id', '?')}" for i in items) or "-"
    return listed, str(order.get("text") or "")


def media_caption(message: dict[str, Any]) -> str:
    media = as_dict(message.get(str(message.get("type"))))
    caption = media.get("caption")
    return caption.strip() if isinstance(caption, str) else ""


def error_codes(message: dict[str, Any]) -> list[Any]:
    return [error.get("code") for error in dicts(message.get("errors"))]


def interactive_type(message: dict[str, Any]) -> str | None:
    subtype = as_dict(message.get("interactive")).get("type")
    return subtype if isinstance(subtype, str) else None
