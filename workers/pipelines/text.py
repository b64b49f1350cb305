"""Text queue: every message that is neither audio nor an image. `message_types.py` decides what each gets."""

from __future__ import annotations

from shared.jobs import InboundJob
from workers.context import WorkerContext
from workers.pipelines.chat_turn import answer_text
from workers.pipelines.message_types import dispatch
from workers.pipelines.payloads import user_text

__all__ = ["answer_text", "handle_text_queue", "user_text"]


def handle_text_queue(ctx: WorkerContext, job: InboundJob) -> None:
    dispatch(ctx, job)
