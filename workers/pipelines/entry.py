"""The pipeline each queue runs: every one starts with the group policy (see `groups`: a group message not
addressed to the bot gets nothing, not even a late-message notice), then the late-message check (see `staleness`)."""

from __future__ import annotations

from collections.abc import Callable

from shared.jobs import InboundJob
from workers.context import WorkerContext
from workers.pipelines.audio import handle_audio_queue
from workers.pipelines.flood import handled_as_flood, release_user_count
from workers.pipelines.groups import handled_by_group_policy
from workers.pipelines.staleness import handled_as_stale
from workers.pipelines.text import handle_text_queue
from workers.pipelines.vision import handle_image
from workers.pipelines.window import deliver_kept_answers

Pipeline = Callable[[WorkerContext, InboundJob], None]


def unless_stale(pipeline: Pipeline) -> Pipeline:
    """A group message not addressed to the bot is only remembered; a late message (Meta's outage backlog) gets the
    late-message policy instead of the pipeline; a message over its user's rate limit is read and remembered, not
    answered (see `flood`)."""

    def run(ctx: WorkerContext, job: InboundJob) -> None:
        if handled_by_group_policy(ctx, job) or handled_as_stale(ctx, job):
            release_user_count(ctx, job)  # not answered here: no model call, no place in the user's window
        elif not handled_as_flood(ctx, job):
            deliver_kept_answers(ctx, job)  # answers held back while the customer service window was closed
            pipeline(ctx, job)

    run.__name__ = getattr(pipeline, "__name__", "pipeline")
    return run


TEXT_PIPELINE = unless_stale(handle_text_queue)
AUDIO_PIPELINE = unless_stale(handle_audio_queue)
VISION_PIPELINE = unless_stale(handle_image)
