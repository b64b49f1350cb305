"""Vision pipeline: an image (with or without caption) -> the vision model -> a quoted text reply.

The image goes to the model as a base64 `data:` URL (shrunk first when Groq would refuse it), together with a
few remembered turns. Memory keeps only the caption and the answer: a follow-up question ("and what colour is
it?") is answered from that text, the image itself is never stored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from shared.jobs import InboundJob
from shared.logging import correlation_id, get_logger
from workers.clients.graph_errors import GraphError
from workers.context import WorkerContext
from workers.delivery.memory import MemoryEntry, entry
from workers.errors import PermanentError, UserInputError
from workers.media.images import prepare_for_vision
from workers.pipelines.chat_turn import context_notes
from workers.pipelines.conversation_language import language_for_reply
from workers.pipelines.prompting import ask_model, chat_messages, vision_call
from workers.pipelines.replies import acknowledge, generate_once, history_of, remember, send_text_reply
from workers.pipelines.request_budget import image_tokens, max_image_side, vision_budget
from workers.text.phrases import phrase

log = get_logger("workers.vision")

_TOO_LARGE = frozenset({"image_too_large", "media_too_large"})
# Qwen3 writes its reasoning into the content as <think>...</think> unless reasoning is off (VISION_REASONING_EFFORT
# may turn it on): never send that to the user.
_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL)


def without_reasoning(text: str) -> str:
    answer = _THINK.sub("", text).strip()
    if not answer:  # cut off while still thinking: there is no answer to send
        raise PermanentError("groq_empty_reply", "only reasoning in the reply")
    return answer


def image_prompt(caption: str, notes: str, language: str) -> str:
    """The text part of the request: the user's caption, or (no caption) a request in the user's language to
    describe the image and ask what they want to know."""
    return notes + caption if caption else notes + phrase("image_no_caption", language)


def vision_parts(prompt: str, data_url: str) -> list[dict[str, Any]]:
    """The new user message's content: the text first, then the image."""
    return [{"type": "text", "text": prompt}, {"type": "image_url", "image_url": {"url": data_url}}]


def vision_request(
    system_prompt: str, history: Sequence[MemoryEntry], prompt: str, data_url: str
) -> list[dict[str, Any]]:
    return chat_messages(system_prompt, history, vision_parts(prompt, data_url))


def describe_image(ctx: WorkerContext, job: InboundJob, media_id: str, prompt: str, history: list[MemoryEntry]) -> str:
    settings = ctx.settings
    data, mime_type = ctx.graph.download_media(media_id, settings.image_max_download_bytes)
    # The image takes at most half the request budget, so the prompt and some history always fit beside it.
    max_side = min(settings.vision_max_image_side, max_image_side(vision_budget(settings) // 2))
    image = prepare_for_vision(
        data,
        settings.vision_max_base64_bytes,
        max_side,
        max_pixels=settings.image_max_pixels,
        cpu_seconds=settings.media_cpu_seconds,
        memory_bytes=settings.media_memory_mb * 1024 * 1024,
    )
    log.info(
        "vision.image",
        correlation_id=correlation_id(job.message_id),
        mime_type=mime_type,
        bytes=len(data),
        sent_bytes=len(image.data),
        size=f"{image.width}x{image.height}",
        reencoded=image.reencoded,
    )
    recent = history[-settings.vision_history_messages :] if settings.vision_history_messages > 0 else []
    reply = ask_model(
        ctx,
        vision_call(settings),
        [ctx.system_prompt],
        recent,
        vision_parts(prompt, image.data_url()),
        extra_tokens=image_tokens(image.width, image.height),
        cid=correlation_id(job.message_id),
        conversation=job.conversation,
    )
    return without_reasoning(reply)


def handle_image(ctx: WorkerContext, job: InboundJob, *, asked: str = "", remember_as: str = "") -> None:
    """Answer the photo in `job.message["image"]` with the vision model and remember the turn. By default the
    request is the caption (or, without one, a request to describe the photo); `asked` replaces it (an edited
    caption's correction: workers/pipelines/amendments.py), and `remember_as` replaces what memory keeps of it."""
    image = job.message.get("image")
    image = image if isinstance(image, dict) else {}
    media_id = image.get("id")
    caption = str(image.get("caption") or "").strip()
    acknowledge(ctx, job)
    history = history_of(ctx, job)
    language = language_for_reply(ctx, job, caption, history)
    notes = context_notes(job.message)
    try:
        if not isinstance(media_id, str) or not media_id:
            raise UserInputError("image_unreadable", "image without a media id")
        prompt = notes + asked if asked else image_prompt(caption, notes, language)
        reply = generate_once(ctx, job, "vision", lambda: describe_image(ctx, job, media_id, prompt, history))
    except UserInputError as exc:
        _cannot_open(ctx, job, exc.reason, language)
        return
    except GraphError as exc:
        if exc.ops_alert:
            raise  # a token or permission problem: every message fails, ops must see it
        # Media deleted or expired (ids live 7 days), or a URL on a host we refuse to send the token to.
        _cannot_open(ctx, job, exc.reason, language)
        return
    send_text_reply(ctx, job, reply)
    remember(ctx, job, entry("user", notes + (remember_as or caption), "image", language), entry("assistant", reply))


def _cannot_open(ctx: WorkerContext, job: InboundJob, reason: str, language: str) -> None:
    log.warning("vision.image_rejected", correlation_id=correlation_id(job.message_id), reason=reason)
    key = "image_too_large" if reason in _TOO_LARGE else "image_unreadable"
    send_text_reply(ctx, job, phrase(key, language), part="notice")
