"""The pipeline each queue runs: a message the user edited or deleted before its run started is dropped first (see
`unless_withdrawn`); every other one starts with the user's controls (commands, opt-out, a person's pause: see
`controls`; a late command is still a command: a `delete` that arrived after Meta's outage must still delete),
then the sandbox's missing-key answer, then the group policy (see `groups`: a group message not addressed to the
bot gets nothing, not even a late-message notice), the late-message check (see `staleness`) and the flood check
(see `flood`); the last message of a burst then answers the whole burst (see `burst`)."""

from __future__ import annotations

from collections.abc import Callable

from shared.config import is_placeholder
from shared.jobs import InboundJob
from shared.ledger import WITHDRAWN_FIELDS
from shared.logging import correlation_id, get_logger
from workers.context import WorkerContext
from workers.pipelines.amendments import keep_unanswered
from workers.pipelines.audio import handle_audio_queue
from workers.pipelines.burst import answer_burst, is_burst_answer
from workers.pipelines.controls import with_user_controls
from workers.pipelines.flood import handled_as_flood, release_user_count
from workers.pipelines.groups import handled_by_group_policy
from workers.pipelines.message_types import expects_reply
from workers.pipelines.replies import acknowledge, send_text_reply
from workers.pipelines.staleness import handled_as_stale
from workers.pipelines.text import handle_text_queue
from workers.pipelines.vision import handle_image
from workers.pipelines.window import deliver_kept_answers

Pipeline = Callable[[WorkerContext, InboundJob], None]

log = get_logger("workers.pipelines.entry")


# The one answer a sandbox without GROQ_API_KEY gives (docs/sandbox.md): said once per message, never retried.
GROQ_KEY_MISSING = (
    "This sandbox has no GROQ_API_KEY, so I cannot answer yet. Create a key at https://console.groq.com/keys, "
    "put it in .env as GROQ_API_KEY=..., and restart `make run`."
)


def unless_groq_key_missing(pipeline: Pipeline) -> Pipeline:
    """In the sandbox, a worker may start without a Groq key: every message then gets a clear answer saying so,
    instead of a Groq 401 that would end in a generic apology."""

    def run(ctx: WorkerContext, job: InboundJob) -> None:
        # What is never answered (a reaction, a deletion, a sticker) needs no model: it is handled as always.
        if ctx.settings.sandbox and is_placeholder(ctx.settings.groq_api_key) and expects_reply(job.message):
            release_user_count(ctx, job)  # no model call: it keeps no place in the user's window
            acknowledge(ctx, job)
            send_text_reply(ctx, job, GROQ_KEY_MISSING, part="groq_key_missing")
            return
        pipeline(ctx, job)

    run.__name__ = getattr(pipeline, "__name__", "pipeline")
    return run


def unless_stale(pipeline: Pipeline) -> Pipeline:
    """A group message not addressed to the bot is only remembered; a late message (Meta's outage backlog) gets the
    late-message policy instead of the pipeline; a message over its user's rate limit is read and remembered, not
    answered (see `flood`)."""

    def run(ctx: WorkerContext, job: InboundJob) -> None:
        if handled_by_group_policy(ctx, job) or handled_as_stale(ctx, job):
            keep_unanswered(ctx, job)  # an edit, deletion or reaction still changes memory or feedback
            release_user_count(ctx, job)  # not answered here: no model call, no place in the user's window
        elif not handled_as_flood(ctx, job):
            deliver_kept_answers(ctx, job)  # answers held back while the customer service window was closed
            # The last message of a burst answers all of it (workers/pipelines/burst.py), whatever its own type.
            (answer_burst if is_burst_answer(ctx, job) else pipeline)(ctx, job)

    run.__name__ = getattr(pipeline, "__name__", "pipeline")
    return run


def unless_withdrawn(pipeline: Pipeline) -> Pipeline:
    """A message the user edited or deleted before its run started (the API flagged it: shared/scripts/
    ledger_amend.lua) is not worked on at all: its edit is answered instead, or nothing is. One flagged while it
    runs is stopped by the send gate."""

    def run(ctx: WorkerContext, job: InboundJob) -> None:
        fields = ctx.ledgers.of(job).fields
        withdrawn = next((field.removeprefix("flag:") for field in WITHDRAWN_FIELDS if field in fields), None)
        if withdrawn is None:
            pipeline(ctx, job)
            return
        release_user_count(ctx, job)
        log.info("message.withdrawn", correlation_id=correlation_id(job.message_id), flag=withdrawn)

    run.__name__ = getattr(pipeline, "__name__", "pipeline")
    return run


def handle_vision_queue(ctx: WorkerContext, job: InboundJob) -> None:
    """A photo; anything else on the vision queue (an edit of a photo's caption, which looks at the photo again:
    shared/jobs.queue_for_message) goes through the message-type table like any message."""
    (handle_image if job.message_type == "image" else handle_text_queue)(ctx, job)


# Controls first (a command needs no model, so it works in a sandbox without a Groq key too), then the key check.
# A withdrawn message before everything: the user took it back, commands included.
TEXT_PIPELINE = unless_withdrawn(with_user_controls(unless_groq_key_missing(unless_stale(handle_text_queue))))
AUDIO_PIPELINE = unless_withdrawn(with_user_controls(unless_groq_key_missing(unless_stale(handle_audio_queue))))
VISION_PIPELINE = unless_withdrawn(with_user_controls(unless_groq_key_missing(unless_stale(handle_vision_queue))))
