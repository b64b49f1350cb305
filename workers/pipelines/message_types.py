"""What the bot does with each WhatsApp message type: one table, one handler per type.

The table is the code behind docs/readme/message-types.md; every row is covered by a test over Meta's sample
payloads. The rule for replies: answer where a person would (a question, a place, a shared contact, a file we
cannot open), stay silent where a person would (a reaction, a sticker, an edit, a system notice).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shared.jobs import InboundJob
from shared.logging import correlation_id, get_logger
from shared.memory import entry
from workers.context import WorkerContext
from workers.phrases import guess_language, phrase
from workers.pipelines.chat_turn import answer_text, context_notes
from workers.pipelines.vision import handle_image
from workers.prompting import last_user_text
from workers.replies import acknowledge, send_text_reply

log = get_logger("workers.message_types")

Handler = Callable[[WorkerContext, InboundJob], None]


class Reply(StrEnum):
    AI = "ai"  # the chat or vision model answers
    FIXED = "fixed"  # a short fixed sentence in the user's language, no model call
    NONE = "none"  # no reply at all


@dataclass(frozen=True, slots=True)
class Route:
    reply: Reply
    handle: Handler


def user_text(message: dict[str, Any]) -> str | None:
    """The words of a message that counts as text: typed text, interactive button/list replies and template
    quick replies (their title, or payload when there is no title)."""
    kind = message.get("type")
    if kind == "text":
        body = (message.get("text") or {}).get("body")
        return body if isinstance(body, str) and body.strip() else None
    if kind == "interactive":
        interactive = message.get("interactive") or {}
        reply = interactive.get("button_reply") or interactive.get("list_reply")
        if isinstance(reply, dict):
            title, description = reply.get("title") or reply.get("id"), reply.get("description")
            return f"{title} ({description})" if description else str(title) if title else None
        return None
    if kind == "button":
        button = message.get("button") or {}
        value = button.get("text") or button.get("payload")
        return str(value) if value else None
    return None


def _language(ctx: WorkerContext, job: InboundJob, hint: str = "") -> str:
    """The user's language for a fixed sentence: from their own words in this message, else from memory."""
    return guess_language(hint or last_user_text(ctx.memory.load(job.conversation)))


def _fixed_reply(ctx: WorkerContext, job: InboundJob, text: str, remember_as: str | None = None) -> None:
    acknowledge(ctx, job)
    send_text_reply(ctx, job, text, part="notice")
    if remember_as is not None:
        # So a follow-up ("call Monica?") has the context; the fixed answer is remembered with it.
        ctx.memory.append(
            job.conversation, entry("user", remember_as, "other"), entry("assistant", text), once_for=job.message_id
        )


# --- handlers ---------------------------------------------------------------------------------------------


def answer_words(ctx: WorkerContext, job: InboundJob) -> None:
    text = user_text(job.message)
    if text is None:  # an empty text body: nothing to answer
        stay_silent(ctx, job)
        return
    answer_text(ctx, job, text)


def answer_location(ctx: WorkerContext, job: InboundJob) -> None:
    location = job.message.get("location") or {}
    described = describe_location(location)
    answer_text(
        ctx,
        job,
        f"(shared a location) {described}. Briefly tell me what is at or near this place and ask how you can help "
        "with it.",
        kind="other",
    )


def describe_location(location: dict[str, Any]) -> str:
    parts = [str(location[k]) for k in ("name", "address") if location.get(k)]
    latitude, longitude = location.get("latitude"), location.get("longitude")
    if latitude is not None and longitude is not None:
        parts.append(f"coordinates {latitude}, {longitude}")
    if location.get("url"):
        parts.append(str(location["url"]))
    return "; ".join(parts) or "no details"


def acknowledge_contacts(ctx: WorkerContext, job: InboundJob) -> None:
    # Names only: third parties' phone numbers go neither to the model nor into memory.
    cards = [c for c in job.message.get("contacts") or () if isinstance(c, dict)]
    names = [contact_name(card) for card in cards]
    listed = ", ".join(names) if names else "?"
    text = phrase("contacts_received", _language(ctx, job)).format(count=len(cards), names=listed)
    _fixed_reply(ctx, job, text, remember_as=f"(shared contacts: {listed})")


def contact_name(card: dict[str, Any]) -> str:
    name = card.get("name") or {}
    formatted = name.get("formatted_name") or " ".join(str(name[k]) for k in ("first_name", "last_name") if name.get(k))
    return str(formatted) or "?"


def acknowledge_order(ctx: WorkerContext, job: InboundJob) -> None:
    order = job.message.get("order") or {}
    items = [i for i in order.get("product_items") or () if isinstance(i, dict)]
    listed = ", ".join(f"{i.get('quantity', 1)}x {i.get('product_retailer_id', '?')}" for i in items) or "-"
    note = str(order.get("text") or "")
    text = phrase("order_received", _language(ctx, job, note)).format(items=listed)
    _fixed_reply(ctx, job, text, remember_as=f"(sent an order: {listed}) {note}".strip())


def explain_media_not_supported(ctx: WorkerContext, job: InboundJob) -> None:
    kind = job.message_type
    media = job.message.get(kind) or {}
    caption = str(media.get("caption") or "") if isinstance(media, dict) else ""
    text = phrase("media_not_supported", _language(ctx, job, caption))
    _fixed_reply(
        ctx, job, text, remember_as=f"{context_notes(job.message)}(sent a {kind} the bot cannot open) {caption}"
    )


def explain_message_not_supported(ctx: WorkerContext, job: InboundJob) -> None:
    errors = job.message.get("errors") or ()
    codes = [e.get("code") for e in errors if isinstance(e, dict)]
    unsupported = job.message.get("unsupported") or {}
    log.info(
        "message.unsupported",
        correlation_id=correlation_id(job.message_id),
        codes=codes,
        what=unsupported.get("type") if isinstance(unsupported, dict) else None,
    )
    _fixed_reply(ctx, job, phrase("message_not_supported", _language(ctx, job)))


def acknowledge_form(ctx: WorkerContext, job: InboundJob) -> None:
    _fixed_reply(ctx, job, phrase("form_received", _language(ctx, job)))


def answer_not_yet(ctx: WorkerContext, job: InboundJob) -> None:
    """Audio is the voice pipeline's; this answers only if an audio job ever lands in a pool without it."""
    _fixed_reply(ctx, job, phrase("not_yet", _language(ctx, job)))


def stay_silent(ctx: WorkerContext, job: InboundJob) -> None:
    """No reply, no typing indicator (Meta: only show typing if you will reply). Logged so it is visible."""
    detail: dict[str, Any] = {}
    if job.message_type == "system":
        system = job.message.get("system") or {}
        detail["system_type"] = system.get("type") if isinstance(system, dict) else None
    if job.message.get("errors"):
        detail["codes"] = [e.get("code") for e in job.message["errors"] if isinstance(e, dict)]
    log.info("message.no_reply", correlation_id=correlation_id(job.message_id), type=job.message_type, **detail)


# --- the table --------------------------------------------------------------------------------------------

AI_ANSWER = Route(Reply.AI, answer_words)
SILENT = Route(Reply.NONE, stay_silent)

ROUTES: dict[str, Route] = {
    "text": AI_ANSWER,
    "button": AI_ANSWER,  # template quick reply: its text is the user's answer
    "image": Route(Reply.AI, handle_image),
    "location": Route(Reply.AI, answer_location),
    "contacts": Route(Reply.FIXED, acknowledge_contacts),
    "order": Route(Reply.FIXED, acknowledge_order),
    "video": Route(Reply.FIXED, explain_media_not_supported),
    "document": Route(Reply.FIXED, explain_media_not_supported),
    "unsupported": Route(Reply.FIXED, explain_message_not_supported),
    "audio": Route(Reply.FIXED, answer_not_yet),
    "sticker": SILENT,  # usually "ok"/"thanks": answering every sticker would be noise
    "reaction": SILENT,  # reactions and their removal (empty emoji)
    "edit": SILENT,  # the original was answered already; a second answer would confuse
    "revoke": SILENT,  # the user deleted a message: nothing to say
    "system": SILENT,  # number or identity changed: a notice, not a message to us
}

INTERACTIVE_ROUTES: dict[str, Route] = {
    "button_reply": AI_ANSWER,
    "list_reply": AI_ANSWER,
    "nfm_reply": Route(Reply.FIXED, acknowledge_form),  # a submitted WhatsApp Flow
    "call_permission_reply": SILENT,  # a yes/no to calling permission: nothing to answer
}


def route_for(message: dict[str, Any]) -> Route:
    kind = message.get("type")
    if kind == "interactive":
        # Without a body the payload is Meta's error case (`value.errors`, 131000): nothing the user can read.
        interactive = message.get("interactive")
        subtype = interactive.get("type") if isinstance(interactive, dict) else None
        return INTERACTIVE_ROUTES.get(str(subtype), SILENT)
    if kind == "text" and user_text(message) is None:
        return SILENT
    return ROUTES.get(str(kind), SILENT)


def expects_reply(message: dict[str, Any]) -> bool:
    return route_for(message).reply is not Reply.NONE


def dispatch(ctx: WorkerContext, job: InboundJob) -> None:
    if job.message_type not in ROUTES and job.message_type != "interactive":
        log.warning("message.unknown_type", correlation_id=correlation_id(job.message_id), type=job.message_type)
    route_for(job.message).handle(ctx, job)
