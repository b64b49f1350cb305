"""The steps every pipeline ends with: generate the answer once, send it once (in parts), remember it once."""

from __future__ import annotations

from collections.abc import Callable

from shared.jobs import InboundJob
from shared.logging import correlation_id, get_logger
from workers.clients.graph_errors import GraphError
from workers.context import WorkerContext
from workers.delivery.ledger import SendResult
from workers.delivery.memory import MemoryEntry
from workers.pipelines.groups import remember_bot_message
from workers.pipelines.window import held_back_outside_window, keep_undelivered, note_keepable
from workers.text.formatting import markdown_to_whatsapp, split_message

log = get_logger("workers.pipelines.replies")


def generate_once(ctx: WorkerContext, job: InboundJob, stage: str, generate: Callable[[], str]) -> str:
    """A model's answer per message, kept in the message's ledger, so a retried job re-sends the same words instead
    of new ones (a reply split in parts must not mix two generations)."""
    return str(ctx.ledgers.of(job).stage(stage, generate))


def history_of(ctx: WorkerContext, job: InboundJob) -> list[MemoryEntry]:
    """The conversation's memory, as the job's claim loaded it (the same round trip), else read now."""
    history = ctx.ledgers.of(job).history
    return history if history is not None else ctx.memory.load(job.conversation)


def remember(ctx: WorkerContext, job: InboundJob, *entries: MemoryEntry) -> bool:
    """Store this message's turn once (the ledger's memory-written flag), unless its reply was blocked by a send
    gate: an answer the user never got is not part of the conversation. Blocked by a person's pause, the user's
    turn is still stored (they said it; the person and, later, the bot should know it)."""
    ledger = ctx.ledgers.of(job)
    if ledger.blocked_by == "paused":
        # A person has the conversation (docs/handoff.md): the user's words are part of it, our unsent answer not.
        entries = tuple(turn for turn in entries if turn["role"] == "user")
    elif ledger.blocked_by is not None:
        return False
    return ledger.remember(ctx.memory, *entries)


def send_text_reply(ctx: WorkerContext, job: InboundJob, text: str, part: str = "text", quote: bool = True) -> int:
    """Format for WhatsApp, split at 4096 characters, quote the user's message in the first part (unless `quote`
    is False: an event such as `request_welcome` is not a message to quote)."""
    if held_back_outside_window(ctx, job, text, part):
        return 0
    parts = split_message(markdown_to_whatsapp(text))
    note_keepable(ctx, job, text, part)
    ledger = ctx.ledgers.of(job)
    sent = 0
    for index, body in enumerate(parts):
        reply_to = job.message_id if index == 0 and quote else None

        def send(body: str = body, reply_to: str | None = reply_to) -> str:
            wamid = ctx.graph.send_text(job.to, job.recipient, body, reply_to, group=job.group_id is not None)
            remember_bot_message(ctx, job, wamid)
            return wamid

        result = ledger.send_once(f"{part}:{index}", send)
        if result is SendResult.BLOCKED:
            if index == 0 and ledger.blocked_by == "outside_window":
                keep_undelivered(ctx, job, text, part)  # the window closed after the pipeline's own check
            break  # a gate is closed (cancelled, paused, outside the window...): no later part goes either
        if result is SendResult.SENT:
            sent += 1
    log.info("reply.sent", correlation_id=correlation_id(job.message_id), parts=len(parts), new=sent)
    return sent


def acknowledge(ctx: WorkerContext, job: InboundJob) -> None:
    """Blue ticks + typing indicator. Best effort: the answer matters more than the indicator. Not in groups:
    Meta supports neither there."""
    if job.group_id:
        return
    try:
        ctx.graph.mark_read_and_typing(job.message_id)
    except GraphError as exc:
        if exc.ops_alert:
            raise
        log.warning("graph.mark_read_failed", correlation_id=correlation_id(job.message_id), reason=exc.reason)
    except Exception as exc:
        log.warning("graph.mark_read_failed", correlation_id=correlation_id(job.message_id), reason=str(type(exc)))
