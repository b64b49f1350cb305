"""The steps every pipeline ends with: generate the answer once, send it once (in parts), remember it once."""

from __future__ import annotations

from collections.abc import Callable

from shared.jobs import InboundJob
from shared.logging import correlation_id, get_logger
from workers.clients.graph_errors import GraphError
from workers.context import WorkerContext
from workers.pipelines.groups import remember_bot_message
from workers.pipelines.window import held_back_outside_window
from workers.text.formatting import markdown_to_whatsapp, split_message

log = get_logger("workers.pipelines.replies")

REPLY_PREFIX = "lp:reply:"
_REPLY_TTL = 24 * 3600


def generate_once(ctx: WorkerContext, job: InboundJob, stage: str, generate: Callable[[], str]) -> str:
    """Cache a model's answer per message, so a retried job re-sends the same words instead of new ones
    (a reply split in parts must not mix two generations)."""
    key = f"{REPLY_PREFIX}{job.message_id}:{stage}"
    cached = ctx.redis.get(key)
    if cached is not None:
        return cached.decode() if isinstance(cached, bytes) else str(cached)
    text = generate()
    # NX: if another copy stored an answer meanwhile, every copy sends that one, never a mix of two.
    if not ctx.redis.set(key, text.encode(), ex=_REPLY_TTL, nx=True):
        stored = ctx.redis.get(key)
        if stored is not None:
            return stored.decode() if isinstance(stored, bytes) else str(stored)
    return text


def send_text_reply(ctx: WorkerContext, job: InboundJob, text: str, part: str = "text", quote: bool = True) -> int:
    """Format for WhatsApp, split at 4096 characters, quote the user's message in the first part (unless `quote`
    is False: an event such as `request_welcome` is not a message to quote)."""
    if held_back_outside_window(ctx, job, text, part):
        return 0
    parts = split_message(markdown_to_whatsapp(text))
    sent = 0
    for index, body in enumerate(parts):
        reply_to = job.message_id if index == 0 and quote else None

        def send(body: str = body, reply_to: str | None = reply_to) -> str:
            wamid = ctx.graph.send_text(job.to, job.recipient, body, reply_to, group=job.group_id is not None)
            remember_bot_message(ctx, job, wamid)
            return wamid

        if ctx.outbox.send_once(job.message_id, f"{part}:{index}", send):
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
