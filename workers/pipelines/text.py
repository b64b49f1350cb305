"""Text pipeline: read receipt + typing, memory, chat model, WhatsApp formatting, quoted reply, memory."""

from __future__ import annotations

from typing import Any

from shared.jobs import InboundJob
from shared.memory import entry
from workers.context import WorkerContext
from workers.phrases import guess_language, phrase
from workers.prompting import chat_messages, last_user_text
from workers.replies import acknowledge, generate_once, send_text_reply


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


def answer_text(ctx: WorkerContext, job: InboundJob, text: str) -> None:
    acknowledge(ctx, job)
    history = ctx.memory.load(job.conversation)
    settings = ctx.settings
    reply = generate_once(
        ctx,
        job,
        "chat",
        lambda: ctx.groq.chat(
            settings.chat_model,
            chat_messages(ctx.system_prompt, history, text),
            settings.chat_max_completion_tokens,
            settings.chat_reasoning_effort,
        ),
    )
    send_text_reply(ctx, job, reply)
    ctx.memory.append(job.conversation, entry("user", text), entry("assistant", reply), once_for=job.message_id)


def answer_not_supported_yet(ctx: WorkerContext, job: InboundJob) -> None:
    language = guess_language(last_user_text(ctx.memory.load(job.conversation)))
    send_text_reply(ctx, job, phrase("not_yet", language), part="notice")


def handle_text_queue(ctx: WorkerContext, job: InboundJob) -> None:
    text = user_text(job.message)
    if text is not None:
        answer_text(ctx, job, text)
    elif job.message_type in ("audio", "image", "video", "document", "sticker"):
        answer_not_supported_yet(ctx, job)
