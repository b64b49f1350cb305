"""An acknowledgement while the bot works: a job that will be answered and runs longer than
ACK_REACTION_AFTER_SECONDS reacts to the user's message with 👀, and takes the reaction back (emoji "") when the
job ends (its answer sent, or its apology). Graph: POST /messages `{"type": "reaction", "reaction":
{"message_id": "<wamid>", "emoji": "👀"}}` (https://developers.facebook.com/docs/whatsapp/cloud-api/messages/
reaction-messages).

- A timer thread beside the pipeline (as the lease's Heartbeat): no worker slot waits for it; it is stopped when
  the pipeline returns, before anything is written back.
- Once per message across retries and redeliveries: each of the two is a reply part of the message's ledger
  (`ack:eyes`, `ack:eyes_removed`), claimed by the send gate; the reaction obeys the gates (a cancelled, paused or
  opted-out conversation gets none), taking it back does not.
- Best effort: a failure is logged and counted, never fails the job.
- Not in groups: Meta supports neither read receipts nor typing indicators there, and a 👀 on a member's message
  would speak to the whole group.
- An edit reacts to the message the user sees: the original.
"""

from __future__ import annotations

import threading
from types import TracebackType

from shared.amendments import amended_message_id
from shared.jobs import InboundJob
from shared.logging import correlation_id, get_logger
from workers import metrics
from workers.context import WorkerContext
from workers.delivery.ledger import ASIDE_PART_PREFIX, SendResult
from workers.pipelines.message_types import expects_reply

log = get_logger("workers.pipelines.ack_reaction")

EYES = "👀"
REACTED = ASIDE_PART_PREFIX + "eyes"
TAKEN_BACK = ASIDE_PART_PREFIX + "eyes_removed"


def reacts_to(job: InboundJob) -> str:
    """The message the user sees: an edit's original, else the message itself."""
    return (amended_message_id(job.message) if job.message_type == "edit" else None) or job.message_id


def _react(ctx: WorkerContext, job: InboundJob, emoji: str) -> str:
    return ctx.graph.send_reaction(job.to, job.recipient, reacts_to(job), emoji)


class AckReaction:
    """`with AckReaction(ctx, job): pipeline(ctx, job)`: reacts once the pipeline has run `after` seconds."""

    def __init__(self, ctx: WorkerContext, job: InboundJob) -> None:
        self._ctx = ctx
        self._job = job
        self._stopped = threading.Event()
        after = ctx.settings.ack_reaction_after_seconds
        wanted = after > 0 and job.group_id is None and expects_reply(job.message)
        self._timer: threading.Timer | None = None
        if wanted and not ctx.ledgers.of(job).was_sent(REACTED):
            self._timer = threading.Timer(after, self._fire)
            self._timer.name = "loopera-ack-reaction"
            self._timer.daemon = True

    def _fire(self) -> None:
        if self._stopped.is_set():
            return
        ledger = self._ctx.ledgers.of(self._job)
        try:
            result = ledger.send_aside(REACTED, lambda: _react(self._ctx, self._job, EYES))
        except Exception as exc:  # best effort: the answer matters, not the acknowledgement
            metrics.ACK_REACTIONS.labels("failed").inc()
            log.warning(
                "ack_reaction.failed", correlation_id=correlation_id(self._job.message_id), error=type(exc).__name__
            )
            return
        if result is SendResult.SENT:
            metrics.ACK_REACTIONS.labels("added").inc()

    def __enter__(self) -> AckReaction:
        if self._timer is not None:
            self._timer.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stopped.set()
        if self._timer is not None:
            self._timer.cancel()
            # A reaction being sent right now finishes first, so taking it back cannot overtake it.
            self._timer.join(timeout=self._ctx.settings.graph_timeout_seconds + 1)


def withdraw_ack_reaction(ctx: WorkerContext, job: InboundJob) -> None:
    """Take the 👀 back once the job is over (answered, or given up), if this message got one. Best effort."""
    ledger = ctx.ledgers.of(job)
    if not ledger.was_sent(REACTED) or ledger.was_sent(TAKEN_BACK):
        return
    try:
        result = ledger.send_aside(TAKEN_BACK, lambda: _react(ctx, job, ""), gates=False)
    except Exception as exc:
        metrics.ACK_REACTIONS.labels("failed").inc()
        log.warning("ack_reaction.not_removed", correlation_id=correlation_id(job.message_id), error=type(exc).__name__)
        return
    if result is SendResult.SENT:
        metrics.ACK_REACTIONS.labels("removed").inc()
