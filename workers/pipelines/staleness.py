"""Stale messages: after an outage Meta delivers up to 7 days of backlog. Answering those as if fresh (a reply to
a question from yesterday, out of order) confuses people, so a message older than `stale_message_seconds` gets no
AI answer. The conversation gets one short "sorry for the delay, please send it again" notice per backlog, quoting
the first stale message that would have been answered; messages that would get no reply anyway stay silent.
"""

from __future__ import annotations

import time
from typing import Any

from shared.jobs import InboundJob
from shared.logging import correlation_id, get_logger
from workers.context import WorkerContext
from workers.pipelines.conversation_language import language_for_reply
from workers.pipelines.message_types import expects_reply
from workers.pipelines.payloads import user_text
from workers.pipelines.replies import generate_once, send_text_reply
from workers.text.phrases import phrase

log = get_logger("workers.pipelines.staleness")

NOTICE_PREFIX = "lp:stale-notice:"


def message_age(message: dict[str, Any], now: float) -> float | None:
    """Seconds since the user sent the message (`timestamp`: unix seconds as a string); None if unknown."""
    try:
        return now - float(str(message["timestamp"]))
    except (KeyError, TypeError, ValueError):
        return None


def is_stale(ctx: WorkerContext, job: InboundJob) -> bool:
    # Decided once per message and remembered: a job retried past the limit keeps its first verdict, so a
    # retry never turns a half-sent answer into a delay notice.
    def decide() -> str:
        age = message_age(job.message, time.time())
        return "stale" if age is not None and age > ctx.settings.stale_message_seconds else "fresh"

    return generate_once(ctx, job, "staleness", decide) == "stale"


def handled_as_stale(ctx: WorkerContext, job: InboundJob) -> bool:
    """True if the message is stale and has been dealt with here (the pipeline must not run)."""
    if not is_stale(ctx, job):
        return False
    age = message_age(job.message, time.time())
    cid = correlation_id(job.message_id)
    log.info("job.stale", correlation_id=cid, type=job.message_type, age_seconds=round(age or 0))
    if not expects_reply(job.message):
        return True
    key = NOTICE_PREFIX + job.conversation
    ttl = max(60, ctx.settings.stale_message_seconds)
    # One notice per conversation per backlog; the owner re-checks on retry, so a failed send is retried.
    if ctx.ledgers.of(job).holds(key, ttl):
        language = language_for_reply(ctx, job, user_text(job.message) or "")
        send_text_reply(ctx, job, phrase("stale_notice", language), part="stale")
    return True
