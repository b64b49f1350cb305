"""One chat turn: read receipt + typing, memory, chat model, quoted reply, memory. Every AI text answer ends here."""

from __future__ import annotations

from typing import Any

from shared.jobs import InboundJob
from shared.logging import correlation_id
from workers.context import WorkerContext
from workers.delivery.memory import TurnKind, entry
from workers.pipelines.conversation_language import language_after
from workers.pipelines.prompting import ask_model, chat_call
from workers.pipelines.replies import acknowledge, generate_once, history_of, remember, send_text_reply


def context_notes(message: dict[str, Any]) -> str:
    """What WhatsApp tells us about a message's origin, as a short prefix the model can use: a forwarded text is
    someone else's words (answer about it, not as if the user wrote it); an ad referral says what they came for."""
    notes: list[str] = []
    context = message.get("context")
    if isinstance(context, dict):
        if context.get("frequently_forwarded"):
            notes.append("forwarded many times")
        elif context.get("forwarded"):
            notes.append("forwarded")
        if context.get("id") and message.get("type") == "text":
            notes.append("replying to an earlier message")
    referral = message.get("referral")
    if isinstance(referral, dict):
        ad = " - ".join(str(referral[k]) for k in ("headline", "body") if referral.get(k))
        notes.append(f"came from an ad: {ad[:300]}" if ad else "came from an ad")
    return f"({'; '.join(notes)}) " if notes else ""


def answer_text(
    ctx: WorkerContext,
    job: InboundJob,
    text: str,
    *,
    kind: TurnKind = "text",
    remember_as: str | None = None,
    words: str = "",
) -> str:
    """Answer `text` with the chat model and remember the turn (as `remember_as` when the request carried an
    instruction not worth keeping). The context notes are stored with it, so later turns still know that it was,
    say, a forwarded message. `words` are the user's own words in `text` (not an instruction of ours): they
    decide the conversation's language stored with the turn. Returns the reply."""
    acknowledge(ctx, job)
    user_content = context_notes(job.message) + text
    history = history_of(ctx, job)
    call = chat_call(ctx.settings)
    cid = correlation_id(job.message_id)
    reply = generate_once(
        ctx,
        job,
        "chat",
        lambda: ask_model(
            ctx, call, [ctx.system_prompt], history, user_content, cid=cid, conversation=job.conversation
        ),
    )
    send_text_reply(ctx, job, reply)
    remember(
        ctx,
        job,
        entry(
            "user",
            context_notes(job.message) + remember_as if remember_as else user_content,
            kind,
            language_after(history, words),
        ),
        entry("assistant", reply),
    )
    return reply
