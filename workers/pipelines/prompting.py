"""Chat requests: system prompt + remembered turns + the new user turn, cut to the model's request budget."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.config import Settings
from shared.logging import get_logger
from workers.clients.groq_errors import RequestTooLargeError
from workers.context import WorkerContext
from workers.delivery.memory import MemoryEntry
from workers.pipelines.request_budget import chat_budget, fit_messages, fixed_tokens, vision_budget

log = get_logger("workers.prompting")


def history_messages(history: Sequence[MemoryEntry]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for turn in history:
        content = turn["content"]
        if turn["role"] == "user" and turn["kind"] == "voice":
            content = f"(voice note) {content}"
        elif turn["role"] == "user" and turn["kind"] == "image":
            content = f"(sent an image) {content}"
        messages.append({"role": turn["role"], "content": content})
    return messages


def chat_messages(system_prompt: str, history: Sequence[MemoryEntry], user_content: Any) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": system_prompt},
        *history_messages(history),
        {"role": "user", "content": user_content},
    ]


@dataclass(frozen=True, slots=True)
class ModelCall:
    """One chat-completions request's fixed parts: the model, its prompt budget (tokens, see request_budget.py),
    its completion budget and reasoning effort."""

    model: str
    budget: int
    max_completion_tokens: int
    reasoning_effort: str = ""


def chat_call(settings: Settings) -> ModelCall:
    return ModelCall(
        settings.chat_model, chat_budget(settings), settings.chat_max_completion_tokens, settings.chat_reasoning_effort
    )


def vision_call(settings: Settings) -> ModelCall:
    return ModelCall(
        settings.vision_model,
        vision_budget(settings),
        settings.vision_max_completion_tokens,
        settings.vision_reasoning_effort,
    )


def ask_model(
    ctx: WorkerContext,
    call: ModelCall,
    system: Sequence[str],
    history: Sequence[MemoryEntry],
    user_content: Any,
    *,
    extra_tokens: int = 0,
    cid: str = "",
    conversation: str = "",
) -> str:
    """The model's answer to `user_content`, with as much history as the budget holds (oldest left out first).

    If Groq still refuses the request as too large (413 on tokens per minute, or `context_length_exceeded`: our
    bound counts the text, the provider also counts what it adds), the room for history and message is halved and
    the request sent once more, then once more without history and in a quarter of the room (so it differs from
    the second even when there was no history to leave out). Neither refusal is a rate limit to wait out. Raises
    RequestTooLargeError when the third is refused too, and whatever `GroqClient.chat` raises otherwise (a
    RateLimited deferral when `conversation` has had its fair share of the model while others wait)."""
    system_messages = [{"role": "system", "content": text} for text in system]
    past = history_messages(history)
    new = {"role": "user", "content": user_content}
    room = call.budget - fixed_tokens(system_messages, extra_tokens)
    ladder: tuple[tuple[int, list[dict[str, Any]]], ...] = ((room, past), (room // 2, past), (room // 4, []))
    error: RequestTooLargeError | None = None
    for attempt, (text_room, turns) in enumerate(ladder, start=1):
        fitted = fit_messages(system_messages, turns, new, call.budget - room + text_room, extra_tokens)
        if fitted.dropped or fitted.cut or attempt > 1:
            log.info(
                "model.request_fitted",
                correlation_id=cid,
                model=call.model,
                attempt=attempt,
                dropped_messages=fitted.dropped,
                message_cut=fitted.cut,
                tokens_bound=fitted.tokens,
                budget=call.budget,
            )
        try:
            return ctx.groq.chat(
                call.model,
                fitted.messages,
                call.max_completion_tokens,
                call.reasoning_effort,
                conversation=conversation,
            )
        except RequestTooLargeError as exc:
            log.warning(
                "model.request_too_large", correlation_id=cid, model=call.model, attempt=attempt, reason=exc.reason
            )
            error = exc
    assert error is not None
    raise error
