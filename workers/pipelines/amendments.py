"""Edits and deletions of earlier messages (Meta's `edit` and `revoke`; shapes in shared/amendments.py).

The API decides each one against the original's send gate before queueing it (shared/scripts/ledger_amend.lua) and
writes the decision into the amendment's ledger (`amend`, `amend_of`); the conversation's mailbox then runs the
amendment after the original:

- an edit that arrived before the original's answer went out (`instead`): the original's answer is superseded
  (its send gate refuses it) and the edited message is answered as if it had been sent so, quoting the original;
- an edit after the answer (`after`): memory gets the edited words in place of the original's, and the model,
  told that the user corrected their earlier message, answers briefly;
- an edited caption carries its media again: before the answer, the edited message goes through the message-type
  table like any message (a photo to the vision model, with the photo: the API queues it on `vision`,
  shared/jobs.queue_for_message; a video's caption gets the answer a video gets); after it, a photo gets a
  correction that looks at the photo again, and media the bot cannot open only changes memory;
- a revoke: the original's turn (the user's words and our answer, or those of an edit of it) leaves memory; before
  the answer went out (`cancelled`) no answer is sent at all. A revoke is never answered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.amendments import Amendment, amended_message_id, edited_message
from shared.jobs import InboundJob
from shared.ledger import as_text, ledger_key, message_ref
from shared.logging import conversation_ref, correlation_id, get_logger
from workers.context import WorkerContext
from workers.delivery.ledger import ASIDE_PART_PREFIX
from workers.delivery.memory import with_user_words, without_message
from workers.pipelines.chat_turn import answer_text
from workers.pipelines.feedback import record_feedback
from workers.pipelines.groups import member_says
from workers.pipelines.payloads import media_caption, user_text
from workers.pipelines.vision import handle_image

log = get_logger("workers.pipelines.amendments")

# How the model hears an edit that came after its answer: what changed, and that a short answer is wanted.
CORRECTION = (
    "(I corrected my earlier message; it now reads:) {words}\n"
    "(Briefly acknowledge the correction and answer what I meant, without repeating your earlier answer.)"
)
# The same for a photo whose caption was edited after its answer: the photo is sent along again.
CAPTION_CORRECTION = (
    "(I corrected the caption of this photo; it now reads:) {words}\n"
    "(Briefly acknowledge the correction and answer what I meant, without repeating your earlier answer.)"
)
# What memory keeps of that request: the edited words themselves replace the original's in memory.
CORRECTION_REMEMBERED = "(corrected an earlier message)"


def original_ref(ctx: WorkerContext, job: InboundJob) -> str | None:
    """The ledger ref of the message this edit or revoke changes (as the API wrote it, else computed)."""
    stored = ctx.ledgers.of(job).fields.get("amend_of")
    if stored:
        return stored
    original = amended_message_id(job.message)
    return message_ref(original, ctx.settings.message_hashing_key()) if original else None


def decision(ctx: WorkerContext, job: InboundJob, ref: str) -> Amendment:
    """The API's decision; for an amendment queued without one, judged now from the original's ledger (the mailbox
    ran the original first, so its answer went out or never will)."""
    stored = ctx.ledgers.of(job).fields.get("amend", "")
    if stored in {member.value for member in Amendment}:
        return Amendment(stored)
    raw: dict[bytes, bytes] = ctx.redis.hgetall(ledger_key(ref))  # type: ignore[assignment]  # a sync client
    if any(_is_answer(as_text(name), as_text(value)) for name, value in raw.items()):
        return Amendment.AFTER
    return Amendment.INSTEAD if job.message_type == "edit" else Amendment.CANCELLED


def _is_answer(field: str, value: str) -> bool:
    """A reply part that went out (not the acknowledgement reaction)."""
    return value == "done" and field.startswith("send:") and not field.startswith("send:" + ASIDE_PART_PREFIX)


def _edited_words(ctx: WorkerContext, job: InboundJob) -> tuple[dict[str, Any], str, str, str] | None:
    """(the new message, the original's id, its ref, the new words) of an edit; None when it has nothing to say."""
    new = edited_message(job.message)
    original = amended_message_id(job.message)
    ref = original_ref(ctx, job)
    words = (user_text(new) or media_caption(new)) if new is not None else ""
    if new is None or original is None or ref is None or not words:
        log.info("edit.nothing_to_answer", correlation_id=correlation_id(job.message_id))
        return None
    return new, original, ref, words


def _rewrite_memory(ctx: WorkerContext, job: InboundJob, ref: str, words: str) -> None:
    """Memory (and the history this job already read) holds the edited words in the original's place."""
    ctx.memory.rewrite(job.conversation, lambda turns: with_user_words(turns, ref, member_says(job, words)))
    ledger = ctx.ledgers.of(job)
    if ledger.history is not None:
        ledger.history = with_user_words(ledger.history, ref, member_says(job, words))


def keep_unanswered(ctx: WorkerContext, job: InboundJob) -> bool:
    """What an edit, a deletion or a reaction changes, kept when the message gets no answer of its own (a person
    has the conversation, Meta's late backlog, a group message not addressed to the bot, the user's rate limit):
    memory holds the edited words, the deleted message leaves memory, the reaction is stored as feedback. True
    when `job` was one of those (and is dealt with); False for any other message, which is left to the caller."""
    if job.message_type == "edit":
        if (edit := _edited_words(ctx, job)) is not None:
            _rewrite_memory(ctx, job, edit[2], edit[3])
    elif job.message_type == "revoke":
        forget_revoked(ctx, job)
    elif job.message_type == "reaction":
        record_feedback(ctx, job)
    else:
        return False
    return True


def answer_edit(
    ctx: WorkerContext, job: InboundJob, answer_as_sent: Callable[[WorkerContext, InboundJob], None]
) -> None:
    """Answer an edit. Before the original's answer, `answer_as_sent` (the message-type table) answers the edited
    message as if it had been sent so, by its own type: a text by the model, a photo with the photo, a video's
    caption with the answer a video gets. After it: a correction, for a text or a photo; a caption of media the bot
    cannot open changes memory only (there is nothing new to answer)."""
    edit = _edited_words(ctx, job)
    if edit is None:
        return
    new, original, ref, words = edit
    verdict = decision(ctx, job, ref)
    # The user sees one message, the original, now with the new words: the answer quotes it.
    kind = str(new.get("type") or "text")
    as_sent = job.model_copy(update={"message_id": original, "message_type": kind, "message": {**new, "id": original}})
    log.info(
        "edit.received",
        correlation_id=correlation_id(job.message_id),
        conversation=conversation_ref(job.conversation),
        decision=verdict.value,
    )
    if verdict is Amendment.INSTEAD:
        answer_as_sent(ctx, as_sent)
        return
    # After the answer: memory holds the edited words in the original's place, before the model sees it.
    _rewrite_memory(ctx, job, ref, words)
    if _is_photo(new):  # the model looks at the photo again, with the corrected caption
        request = CAPTION_CORRECTION.format(words=words)
        handle_image(ctx, as_sent, asked=request, remember_as=CORRECTION_REMEMBERED)
    elif kind == "text":
        request = CORRECTION.format(words=member_says(job, words))
        answer_text(ctx, as_sent, request, remember_as=CORRECTION_REMEMBERED, words=words)
    else:
        log.info("edit.caption_remembered", correlation_id=correlation_id(job.message_id), type=kind)


def _is_photo(message: dict[str, Any]) -> bool:
    """An edited photo caption: Meta's edit carries the photo itself (its media id) with the new caption."""
    image = message.get("image") if message.get("type") == "image" else None
    return isinstance(image, dict) and isinstance(image.get("id"), str) and bool(image["id"])


def forget_revoked(ctx: WorkerContext, job: InboundJob) -> None:
    """A message deleted for everyone leaves the conversation's memory; never answered, no read receipt."""
    ref = original_ref(ctx, job)
    if ref is None:
        log.info("revoke.unknown_message", correlation_id=correlation_id(job.message_id))
        return
    verdict = decision(ctx, job, ref)
    removed = ctx.memory.rewrite(job.conversation, lambda turns: without_message(turns, ref))
    log.info(
        "revoke.received",
        correlation_id=correlation_id(job.message_id),
        conversation=conversation_ref(job.conversation),
        decision=verdict.value,
        forgotten=removed,
    )
