"""Request budgets: what one model request may carry, and how a request is cut down to it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from shared.config import ConfigError, Settings
from workers.clients.groq_errors import RequestTooLargeError
from workers.delivery.memory import MemoryEntry, entry
from workers.pipelines.prompting import ModelCall, ask_model, chat_call
from workers.pipelines.request_budget import (
    MESSAGE_OVERHEAD_TOKENS,
    REQUEST_OVERHEAD_TOKENS,
    FixedPartsTooLargeError,
    chat_budget,
    check_system_prompt_fits,
    cut_text,
    fit_messages,
    image_tokens,
    max_image_side,
    message_tokens,
    request_budget,
    text_tokens,
)

SYSTEM = [{"role": "system", "content": "Be brief."}]


def turns(*sizes: int) -> list[dict[str, Any]]:
    """Alternating user/assistant messages, each `size` bytes of text, numbered in their content."""
    out = []
    for i, size in enumerate(sizes):
        role = "user" if i % 2 == 0 else "assistant"
        out.append({"role": role, "content": f"{i:03d}" + "x" * (size - 3)})
    return out


def test_the_budget_is_the_smaller_limit_minus_the_completion_budget() -> None:
    assert request_budget(131_072, 8_000, 1_024) == 6_976  # free tier: TPM is the binding limit
    assert request_budget(8_192, 250_000, 1_024) == 7_168  # a paid plan: the context window binds
    assert request_budget(131_072, 0, 1_024) == 130_048  # TPM switched off
    assert chat_budget(Settings()) == 6_976


def test_utf8_bytes_bound_every_script() -> None:
    assert text_tokens("hello") == 5
    assert text_tokens("olá") == 4
    assert text_tokens("مرحبا") == 10
    assert text_tokens("🙂") == 4


def test_everything_fits_nothing_is_dropped() -> None:
    history = turns(100, 100, 100, 100)
    new = {"role": "user", "content": "and now?"}
    fitted = fit_messages(SYSTEM, history, new, 10_000)
    assert fitted.messages == [*SYSTEM, *history, new]
    assert (fitted.dropped, fitted.cut) == (0, False)
    assert fitted.tokens == REQUEST_OVERHEAD_TOKENS + sum(message_tokens(m) for m in fitted.messages)


def test_oldest_turns_go_first_and_the_new_message_always_stays() -> None:
    history = turns(1000, 1000, 1000, 1000, 1000, 1000)
    new = {"role": "user", "content": "short question"}
    budget = REQUEST_OVERHEAD_TOKENS + message_tokens(SYSTEM[0]) + message_tokens(new) + 3 * (1000 + 8) + 5
    fitted = fit_messages(SYSTEM, history, new, budget)
    # Three messages would fit, but the oldest of them is an answer whose question was left out: it goes too.
    assert fitted.messages == [*SYSTEM, *history[-2:], new]
    assert fitted.dropped == 4 and not fitted.cut
    assert fitted.tokens <= budget


@pytest.mark.parametrize("budget", [400, 700, 1_500, 3_000])
def test_fitted_requests_never_exceed_their_budget(budget: int) -> None:
    history = turns(*range(50, 1550, 100))
    for new_size in (10, 200, 2_000, 20_000):
        new = {"role": "user", "content": "é" * new_size}
        fitted = fit_messages(SYSTEM, history, new, budget)
        assert fitted.tokens <= budget
        assert REQUEST_OVERHEAD_TOKENS + sum(message_tokens(m) for m in fitted.messages) <= budget
        assert fitted.messages[-1]["role"] == "user"


def test_a_message_larger_than_the_budget_is_cut_with_a_note_and_no_history() -> None:
    text = "ação " * 2_000  # 4,000+ characters, 2 bytes for each ç and ã
    fitted = fit_messages(SYSTEM, turns(10, 10), {"role": "user", "content": text}, 1_500)
    assert fitted.cut and fitted.dropped == 2
    sent = fitted.messages[-1]["content"]
    assert sent.startswith("ação ação")
    assert f"of {len(text)} characters are shown" in sent
    assert "\ufffd" not in sent  # no character split in half
    assert fitted.tokens <= 1_500


def test_cutting_keeps_the_image_and_cuts_only_the_text() -> None:
    new = {
        "role": "user",
        "content": [{"type": "text", "text": "y" * 5_000}, {"type": "image_url", "image_url": {"url": "data:x"}}],
    }
    fitted = fit_messages(SYSTEM, [], new, 3_000, extra_tokens=image_tokens(1024, 768))
    content = fitted.messages[-1]["content"]
    assert content[1] == {"type": "image_url", "image_url": {"url": "data:x"}}
    assert "cut here" in content[0]["text"]
    assert fitted.tokens <= 3_000


def test_cut_text_fits_its_room() -> None:
    for room in (0, 7, 50, 250, 300, 1_000):
        assert text_tokens(cut_text("ü" * 3_000, room)) <= room


def test_image_tokens_count_28_pixel_tiles() -> None:
    assert image_tokens(2048, 2048) == 74 * 74 + 8
    assert image_tokens(28, 28) == 1 + 8


@pytest.mark.parametrize("tokens", [100, 3_488, 6_976])
def test_an_image_within_max_image_side_fits_its_tokens_whatever_its_shape(tokens: int) -> None:
    side = max_image_side(tokens)
    for width, height in ((side, side), (side, 1), (side, side - 1), (1, side)):
        assert image_tokens(width, height) <= tokens
    assert image_tokens(side + 28, side + 28) > tokens


def test_a_system_prompt_that_fills_the_budget_is_refused_at_start() -> None:
    settings = Settings()
    check_system_prompt_fits(settings, settings.system_prompt)  # the default fits
    with pytest.raises(ConfigError, match="system prompt is too long for the chat model"):
        check_system_prompt_fits(settings, "x" * 7_000)
    with pytest.raises(ConfigError, match="CHAT_TPM"):
        check_system_prompt_fits(Settings(chat_max_completion_tokens=7_900), "Be brief.")


def test_the_system_messages_alone_never_fit_silently() -> None:
    with pytest.raises(FixedPartsTooLargeError, match="fixed parts"):
        fit_messages([{"role": "system", "content": "x" * 2_000}], [], {"role": "user", "content": "hi"}, 1_000)


class SizeLimitedGroq:
    """Refuses (like Groq's 413) every request whose text is larger than `limit` characters."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.requests: list[list[dict[str, Any]]] = []

    def chat(
        self, model: str, messages: list[dict[str, Any]], max_tokens: int, effort: str = "", conversation: str = ""
    ) -> str:
        self.requests.append(messages)
        if sum(len(str(m["content"])) for m in messages) > self.limit:
            raise RequestTooLargeError("groq_request_too_large_413", "HTTP 413", model=model)
        return "ok"


def history_of(n: int, size: int) -> list[MemoryEntry]:
    return [entry("user" if i % 2 == 0 else "assistant", f"{i}:" + "h" * size) for i in range(n)]


def test_a_413_halves_the_room_then_drops_the_history() -> None:
    groq = SizeLimitedGroq(limit=2_500)
    ctx = SimpleNamespace(groq=groq)
    call = ModelCall("m", budget=6_000, max_completion_tokens=100)
    assert ask_model(ctx, call, ["Be brief."], history_of(8, 1_000), "question") == "ok"  # type: ignore[arg-type]
    sizes = [len(r) for r in groq.requests]
    assert len(groq.requests) == 2 and sizes[1] < sizes[0]  # halved: fewer remembered turns
    assert groq.requests[1][-1]["content"] == "question"


def test_after_two_refusals_the_answer_comes_without_history_in_a_quarter_of_the_room() -> None:
    groq = SizeLimitedGroq(limit=1_000)
    ctx = SimpleNamespace(groq=groq)
    call = ModelCall("m", budget=6_000, max_completion_tokens=100)
    assert ask_model(ctx, call, ["Be brief."], history_of(8, 900), "question") == "ok"  # type: ignore[arg-type]
    assert len(groq.requests) == 3
    assert [m["role"] for m in groq.requests[2]] == ["system", "user"]


def test_a_request_refused_three_times_raises_the_providers_error() -> None:
    groq = SizeLimitedGroq(limit=3)
    with pytest.raises(RequestTooLargeError):
        ask_model(SimpleNamespace(groq=groq), ModelCall("m", 6_000, 100), ["sys"], history_of(4, 10), "q")  # type: ignore[arg-type]
    assert len(groq.requests) == 3


def test_chat_call_takes_its_budget_from_settings() -> None:
    call = chat_call(Settings(chat_tpm=30_000, chat_context_window_tokens=16_000, chat_max_completion_tokens=2_000))
    assert call.budget == 14_000
    assert MESSAGE_OVERHEAD_TOKENS > 0
