"""What the bot does with each WhatsApp message type: one table, one handler per type.

The table is the code behind the README's "Message types" table; every row is covered by a test over Meta's sample
payloads. The rule for replies: answer where a person would (a question, a place, a shared contact, a file we
cannot open, an edited question), stay silent where a person would (a reaction, a sticker, a deleted message, a
system notice).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from shared.jobs import InboundJob
from shared.logging import correlation_id, get_logger
from workers.context import WorkerContext
from workers.delivery.memory import entry
from workers.pipelines.amendments import answer_edit, forget_revoked
from workers.pipelines.chat_turn import answer_text, context_notes
from workers.pipelines.conversation_language import language_for_reply
from workers.pipelines.feedback import record_feedback
from workers.pipelines.groups import member_says
from workers.pipelines.payloads import (
    as_dict,
    contact_names,
    describe_location,
    error_codes,
    interactive_type,
    media_caption,
    order_summary,
    user_text,
)
from workers.pipelines.replies import acknowledge, remember, send_text_reply
from workers.pipelines.vision import handle_image
from workers.text.phrases import phrase

log = get_logger("workers.message_types")

Handler = Callable[[WorkerContext, InboundJob], None]


class Reply(StrEnum):
    AI = "ai"  # the chat or vision model answers
    FIXED = "fixed"  # a short fixed sentence in the user's language, no model call
    WELCOME = "welcome"  # WELCOME_MESSAGE, not quoting the event (empty setting: no reply)
    NONE = "none"  # no reply at all


@dataclass(frozen=True, slots=True)
class Route:
    reply: Reply
    handle: Handler


def _language(ctx: WorkerContext, job: InboundJob, hint: str = "") -> str:
    """The user's language for a fixed sentence: their own words in this message, else the conversation's."""
    return language_for_reply(ctx, job, hint)


def _fixed_reply(
    ctx: WorkerContext, job: InboundJob, text: str, remember_as: str | None = None, language: str = ""
) -> None:
    acknowledge(ctx, job)
    send_text_reply(ctx, job, text, part="notice")
    if remember_as is not None:
        # So a follow-up ("call Monica?") has the context; the fixed answer is remembered with it.
        remember(ctx, job, entry("user", remember_as, "other", language), entry("assistant", text))


# --- handlers ---------------------------------------------------------------------------------------------


def answer_words(ctx: WorkerContext, job: InboundJob) -> None:
    text = user_text(job.message)
    if text is None:  # an empty text body: nothing to answer
        stay_silent(ctx, job)
        return
    answer_text(ctx, job, member_says(job, text), words=text)


def answer_location(ctx: WorkerContext, job: InboundJob) -> None:
    shared = f"(shared a location) {describe_location(job.message)}"
    ask = ". Briefly tell me what is at or near this place and ask how you can help with it."
    answer_text(ctx, job, shared + ask, kind="other", remember_as=shared)


def acknowledge_contacts(ctx: WorkerContext, job: InboundJob) -> None:
    names = contact_names(job.message)
    listed = ", ".join(names) if names else "?"
    language = _language(ctx, job)
    text = phrase("contacts_received", language).format(count=len(names), names=listed)
    _fixed_reply(ctx, job, text, remember_as=f"(shared contacts: {listed})", language=language)


def acknowledge_order(ctx: WorkerContext, job: InboundJob) -> None:
    listed, note = order_summary(job.message)
    language = _language(ctx, job, note)
    text = phrase("order_received", language).format(items=listed)
    _fixed_reply(ctx, job, text, remember_as=f"(sent an order: {listed}) {note}".strip(), language=language)


def explain_media_not_supported(ctx: WorkerContext, job: InboundJob) -> None:
    caption = media_caption(job.message)
    language = _language(ctx, job, caption)
    text = phrase("media_not_supported", language)
    notes = context_notes(job.message)
    remember_as = f"{notes}(sent a {job.message_type} the bot cannot open) {caption}"
    _fixed_reply(ctx, job, text, remember_as=remember_as, language=language)


def explain_message_not_supported(ctx: WorkerContext, job: InboundJob) -> None:
    unsupported = as_dict(job.message.get("unsupported")).get("type")
    log.info(
        "message.unsupported",
        correlation_id=correlation_id(job.message_id),
        codes=error_codes(job.message),
        what=unsupported if isinstance(unsupported, str) else None,
    )
    _fixed_reply(ctx, job, phrase("message_not_supported", _language(ctx, job)))


def acknowledge_form(ctx: WorkerContext, job: InboundJob) -> None:
    _fixed_reply(ctx, job, phrase("form_received", _language(ctx, job)))


def send_welcome(ctx: WorkerContext, job: InboundJob) -> None:
    """A user opened the chat for the first time (`request_welcome`, sent when welcome messages are on for the
    number: https://developers.facebook.com/docs/whatsapp/cloud-api/phone-numbers/conversational-components).
    The event is not a message: no read receipt, nothing quoted, nothing for the model."""
    text = ctx.settings.welcome_message.strip()
    if not text:
        stay_silent(ctx, job)
        return
    send_text_reply(ctx, job, text, part="welcome", quote=False)
    remember(ctx, job, entry("assistant", text))


def answer_not_yet(ctx: WorkerContext, job: InboundJob) -> None:
    """Audio is the voice pipeline's; this answers only if an audio job ever lands in a pool without it."""
    _fixed_reply(ctx, job, phrase("not_yet", _language(ctx, job)))


def stay_silent(ctx: WorkerContext, job: InboundJob) -> None:
    """No reply, no typing indicator (Meta: only show typing if you will reply). Logged so it is visible."""
    detail: dict[str, Any] = {}
    if job.message_type == "system":
        detail["system_type"] = as_dict(job.message.get("system")).get("type")
    if codes := error_codes(job.message):
        detail["codes"] = codes
    log.info("message.no_reply", correlation_id=correlation_id(job.message_id), type=job.message_type, **detail)


def answer_edit_by_type(ctx: WorkerContext, job: InboundJob) -> None:
    """An edit; before the original's answer, the edited message is answered by this table, by its own type."""
    answer_edit(ctx, job, dispatch)


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
    "unknown": Route(Reply.FIXED, explain_message_not_supported),  # the older name of `unsupported` (131051)
    "request_welcome": Route(Reply.WELCOME, send_welcome),
    "audio": Route(Reply.FIXED, answer_not_yet),
    "sticker": SILENT,  # usually "ok"/"thanks": answering every sticker would be noise
    "reaction": Route(Reply.NONE, record_feedback),  # feedback on our answer (or its removal: empty emoji)
    "edit": Route(Reply.AI, answer_edit_by_type),  # answered instead of the original, or as a correction
    "revoke": Route(Reply.NONE, forget_revoked),  # deleted for everyone: not answered, and out of memory
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
        return INTERACTIVE_ROUTES.get(interactive_type(message) or "", SILENT)
    if kind == "text" and user_text(message) is None:
        return SILENT
    return ROUTES.get(str(kind), SILENT)


def expects_reply(message: dict[str, Any]) -> bool:
    """Whether the user is waiting for an answer to this message (a late one then gets the delay notice). A
    welcome is not an answer: a late `request_welcome` gets nothing."""
    return route_for(message).reply in (Reply.AI, Reply.FIXED)


def dispatch(ctx: WorkerContext, job: InboundJob) -> None:
    if job.message_type not in ROUTES and job.message_type != "interactive":
        log.warning("message.unknown_type", correlation_id=correlation_id(job.message_id), type=job.message_type)
    route_for(job.message).handle(ctx, job)
