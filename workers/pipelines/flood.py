"""Per-user rate limit: messages over USER_MESSAGES_PER_WINDOW are read and remembered, not answered.

Only messages that would go to a model count (text, voice notes, images, locations...): a fixed sentence or a
silent type costs no budget. The first message over the limit in a window gets one "please slow down" in the
user's language; the rest stay quiet. The decision is kept per message, so a redelivered job decides the same way.
"""

from __future__ import annotations

from shared.jobs import InboundJob
from shared.logging import correlation_id, get_logger
from workers.clients.graph_errors import GraphError
from workers.clients.user_rate_limit import UserAdmission, UserRateLimit
from workers.context import WorkerContext
from workers.delivery.memory import TurnKind, entry
from workers.pipelines.amendments import keep_unanswered
from workers.pipelines.conversation_language import language_after
from workers.pipelines.groups import member_says
from workers.pipelines.message_types import Reply, route_for
from workers.pipelines.payloads import media_caption, user_text
from workers.pipelines.replies import acknowledge, generate_once, history_of, remember, send_text_reply
from workers.text.phrases import phrase

log = get_logger("workers.pipelines.flood")

_MODEL_TYPES = frozenset({"audio", "image"})


def goes_to_a_model(job: InboundJob) -> bool:
    return job.message_type in _MODEL_TYPES or route_for(job.message).reply is Reply.AI


def remembered_as(job: InboundJob) -> tuple[str, TurnKind]:
    """What memory keeps of a message that was not answered (a voice note was not transcribed)."""
    if job.message_type == "audio":
        return "(voice note, not listened to: sent while over the message limit)", "voice"
    if job.message_type == "image":
        return media_caption(job.message), "image"
    return user_text(job.message) or f"(sent a {job.message_type})", "text"


def mark_read(ctx: WorkerContext, job: InboundJob) -> None:
    """Blue ticks without the typing indicator (no answer follows). Best effort, like `acknowledge`; none in groups
    (Meta supports no read receipts there)."""
    if job.group_id:
        return
    try:
        ctx.graph.mark_read(job.message_id)
    except GraphError as exc:
        if exc.ops_alert:
            raise
        log.warning("graph.mark_read_failed", correlation_id=correlation_id(job.message_id), reason=exc.reason)


def release_user_count(ctx: WorkerContext, job: InboundJob) -> None:
    """The job's claim counted its message in the user's window (ledger_claim.lua), and it does not go to a model
    (a fixed reply, a silent type, a stale message): take it back, once."""
    ledger = ctx.ledgers.of(job)
    if ledger.fields.get("user_window") == "counted":
        UserRateLimit(ctx.redis, ctx.settings).release(job.conversation, ledger.key)
        ledger.fields["user_window"] = "released"
        ledger.note("user_window", "released")


def handled_as_flood(ctx: WorkerContext, job: InboundJob) -> bool:
    """True when the user is over their limit and the message has been dealt with here (no model call). The
    decision is usually already in the ledger: the job's claim counted the message (no round trip of its own)."""
    if ctx.settings.user_messages_per_window <= 0:
        return False
    if not goes_to_a_model(job):
        release_user_count(ctx, job)
        return False
    limiter = UserRateLimit(ctx.redis, ctx.settings)
    ledger = ctx.ledgers.of(job)
    if job.member:
        # A group: the claim counted the group's window; the limit is the member's, so the others are not slowed
        # down. admit() gives a redelivered message the same decision, so a retry does not count it twice.
        release_user_count(ctx, job)
        decision = UserAdmission(limiter.admit(job.member, ledger.key).value)
    else:
        decision = UserAdmission(
            generate_once(ctx, job, "user_limit", lambda: limiter.admit(job.conversation, ledger.key).value)
        )
    if decision is UserAdmission.ANSWER:
        return False
    cid = correlation_id(job.message_id)
    log.info("user.over_limit", correlation_id=cid, type=job.message_type, notice=decision is UserAdmission.SLOW_DOWN)
    words, kind = remembered_as(job)
    history = history_of(ctx, job)
    language = language_after(history, user_text(job.message) or "")
    if decision is UserAdmission.SLOW_DOWN:
        acknowledge(ctx, job)
        window = round(ctx.settings.user_rate_window_seconds)
        send_text_reply(ctx, job, phrase("slow_down", language).format(seconds=window), part="notice")
    else:
        mark_read(ctx, job)
    if not keep_unanswered(ctx, job):  # an edit changes the original's words in memory instead
        remember(ctx, job, entry("user", member_says(job, words), kind, language))
    return True
