"""Replies and the 24-hour customer service window (see workers/delivery/service_window.py).

Every free-form send checks the window first. Outside it nothing free-form is sent (Meta would refuse it with
131047, and a dead letter would only replay the refusal): the reason is logged (`reply.outside_window`), an answer
is kept for the user's next message (workers/delivery/undelivered.py), and an approved template is sent instead
if OUTSIDE_WINDOW_TEMPLATE names one. The job then ends normally: nothing is retried or dead-lettered for this.
"""

from __future__ import annotations

from shared.jobs import InboundJob
from shared.ledger import CUSTOMER_SERVICE_WINDOW_SECONDS as WINDOW_SECONDS
from shared.logging import conversation_ref, correlation_id, get_logger
from workers.context import WorkerContext
from workers.delivery.service_window import window_open
from workers.delivery.undelivered import UndeliveredAnswers

log = get_logger("workers.pipelines.window")

TEMPLATE_SENT_PREFIX = "lp:window-template:"
# Answers worth keeping: the model's reply and fixed answers to the user's message, not notices about timing.
KEPT_PARTS = frozenset({"text", "notice", "welcome"})


def held_back_outside_window(ctx: WorkerContext, job: InboundJob, text: str, part: str) -> bool:
    """True when the window is closed and the reply was dealt with here (kept, maybe a template sent)."""
    if window_open(ctx.redis, job):
        return False
    keep = keep_undelivered(ctx, job, text, part)
    template = ctx.settings.outside_window_template
    # One template per conversation per day: a backlog of old messages must not become a burst of templates.
    if template and ctx.redis.set(TEMPLATE_SENT_PREFIX + job.conversation, b"1", nx=True, ex=WINDOW_SECONDS):
        language = ctx.settings.outside_window_template_language
        ctx.ledgers.of(job).send_once(
            "template", lambda: ctx.graph.send_template(job.to, job.recipient, template, language), template=True
        )
    log.info(
        "reply.outside_window",
        correlation_id=correlation_id(job.message_id),
        conversation=conversation_ref(job.conversation),
        part=part,
        kept=keep,
        template=bool(template),
    )
    return True


def keep_undelivered(ctx: WorkerContext, job: InboundJob, text: str, part: str) -> bool:
    """Keep an answer the window stopped, for the user's next message. Returns whether the part is worth keeping."""
    if part not in KEPT_PARTS:
        return False
    UndeliveredAnswers(ctx.redis, ctx.settings.undelivered_ttl_seconds).keep(job.conversation, text)
    return True


def deliver_kept_answers(ctx: WorkerContext, job: InboundJob) -> None:
    """The user wrote again: send the answers kept while the window was closed, once each, before the new one."""
    if ctx.ledgers.of(job).kept_answers is False:
        return  # the claim read the conversation's state: nothing is kept (the common case, no round trip)
    store = UndeliveredAnswers(ctx.redis, ctx.settings.undelivered_ttl_seconds)
    kept = store.kept(job.conversation)
    if not kept or not window_open(ctx.redis, job):
        return
    group = job.group_id is not None
    for index, text in enumerate(kept):

        def send(text: str = text) -> str:
            return ctx.graph.send_text(job.to, job.recipient, text, None, group=group)

        ctx.ledgers.of(job).send_once(f"kept:{index}", send)
    store.drop(job.conversation)
    log.info("reply.kept_delivered", correlation_id=correlation_id(job.message_id), answers=len(kept))
