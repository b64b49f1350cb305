"""The pipeline each queue runs: every one starts with the user's controls (commands, opt-out, a person's pause:
see `controls`), then the same late-message and flood checks (see `staleness`, `flood`). A late command is still
a command: a `delete` that arrived after Meta's outage must still delete."""

from __future__ import annotations

from collections.abc import Callable

from shared.jobs import InboundJob
from workers.context import WorkerContext
from workers.pipelines.audio import handle_audio_queue
from workers.pipelines.controls import with_user_controls
from workers.pipelines.flood import handled_as_flood, release_user_count
from workers.pipelines.staleness import handled_as_stale
from workers.pipelines.text import handle_text_queue
from workers.pipelines.vision import handle_image

Pipeline = Callable[[WorkerContext, InboundJob], None]


def unless_stale(pipeline: Pipeline) -> Pipeline:
    """A late message (Meta's outage backlog) gets the late-message policy instead of the pipeline; a message over
    its user's rate limit is read and remembered, not answered (see `flood`)."""

    def run(ctx: WorkerContext, job: InboundJob) -> None:
        if handled_as_stale(ctx, job):
            release_user_count(ctx, job)  # a late message is no model call: it keeps no place in the window
        elif not handled_as_flood(ctx, job):
            pipeline(ctx, job)

    run.__name__ = getattr(pipeline, "__name__", "pipeline")
    return run


TEXT_PIPELINE = with_user_controls(unless_stale(handle_text_queue))
AUDIO_PIPELINE = with_user_controls(unless_stale(handle_audio_queue))
VISION_PIPELINE = with_user_controls(unless_stale(handle_image))
