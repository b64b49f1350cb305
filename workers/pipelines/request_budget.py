"""How much one model request may carry, and how a chat request is cut down to it.

Groq refuses a request that does not fit either of two limits: the model's context window (HTTP 400
`context_length_exceeded`) and the organisation's tokens per minute, in which the request's own
`max_completion_tokens` counts (HTTP 413 "Request too large ... on tokens per minute";
https://console.groq.com/docs/rate-limits). So a request's budget is

    min(context window, tokens per minute) - max_completion_tokens     (tokens)

and the prompt is counted with an upper bound that needs no tokenizer: every model we call uses a byte-level BPE
vocabulary (gpt-oss: o200k_harmony, https://github.com/openai/harmony; Qwen: byte-level BPE), whose tokens each
cover at least one byte of UTF-8, so a text never has more tokens than UTF-8 bytes. Each message adds its chat
template markers, and the request the provider's own preamble (gpt-oss' harmony system message); both are counted
generously below. An image costs one token per 28x28 pixel tile (Qwen2.5-VL; Qwen3-VL's tiles are 32x32, fewer
tokens: https://github.com/QwenLM/Qwen2.5-VL#image-resolution-for-performance-boost).

Fitting (`fit_messages`): the system messages and the new user message always go; remembered turns are added
newest first while they fit, so the oldest go first; a new message that alone does not fit is cut, with a note to
the model that it was.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.config import ConfigError, Settings
from workers.errors import PermanentError

# Chat template markers per message (harmony: <|start|>role<|channel|>...<|message|>...<|end|> is about 6).
MESSAGE_OVERHEAD_TOKENS = 8
# Per request: the provider's preamble (gpt-oss' harmony system message with date, reasoning level and channels is
# about 60 tokens) plus the reply's own start markers.
REQUEST_OVERHEAD_TOKENS = 128
IMAGE_TILE_PIXELS = 28
IMAGE_OVERHEAD_TOKENS = 8
CUT_NOTE = (
    "\n\n[Note to the assistant: this message was too long for one request and was cut here; only its first "
    "{kept} of {total} characters are shown. Answer what you can and say that the rest was cut.]"
)


class FixedPartsTooLargeError(PermanentError):
    """The parts every fitting must carry (system messages, image) alone exceed the budget: no request can fit.
    `check_system_prompt_fits` refuses such a prompt at start and `max_image_side` keeps images to half a budget,
    so this is a configuration mistake, answered with the usual apology."""


@dataclass(frozen=True, slots=True)
class Fitted:
    """A request cut to its budget: `messages` to send, how many remembered messages were left out, and whether
    the new message itself had to be cut."""

    messages: list[dict[str, Any]]
    dropped: int
    cut: bool
    tokens: int  # the upper bound of the prompt as sent


def text_tokens(text: str) -> int:
    """Upper bound of `text`'s tokens in any byte-level BPE vocabulary: its UTF-8 bytes."""
    return len(text.encode("utf-8"))


def image_tokens(width: int, height: int) -> int:
    """Upper bound of one image's tokens for the vision model (28x28 pixel tiles, see the module docstring)."""
    return math.ceil(width / IMAGE_TILE_PIXELS) * math.ceil(height / IMAGE_TILE_PIXELS) + IMAGE_OVERHEAD_TOKENS


def message_tokens(message: dict[str, Any]) -> int:
    """Tokens of one chat message's text (string content or the text parts of a multimodal one), with its
    template markers. Images are counted by the caller (`fit_messages(extra_tokens=...)`)."""
    content = message.get("content")
    if isinstance(content, str):
        size = text_tokens(content)
    elif isinstance(content, list):
        size = sum(text_tokens(str(p.get("text", ""))) for p in content if isinstance(p, dict))
    else:
        size = 0
    return size + MESSAGE_OVERHEAD_TOKENS


def request_budget(context_window: int, tokens_per_minute: int, max_completion_tokens: int) -> int:
    """Prompt tokens one request may use (may be <= 0 when the completion budget alone fills the limit).
    `tokens_per_minute` 0 means no per-minute limit (a paid plan with the limiter switched off)."""
    limit = min(context_window, tokens_per_minute) if tokens_per_minute > 0 else context_window
    return limit - max_completion_tokens


def chat_budget(settings: Settings) -> int:
    return request_budget(settings.chat_context_window_tokens, settings.chat_tpm, settings.chat_max_completion_tokens)


def vision_budget(settings: Settings) -> int:
    return request_budget(
        settings.vision_context_window_tokens, settings.vision_tpm, settings.vision_max_completion_tokens
    )


def max_image_side(tokens: int) -> int:
    """The longest image side (pixels) whose tiles fit in `tokens`, whatever the aspect ratio: a side of 28*n
    pixels has at most n*n tiles."""
    return IMAGE_TILE_PIXELS * math.isqrt(max(1, tokens - IMAGE_OVERHEAD_TOKENS))


def check_system_prompt_fits(settings: Settings, system_prompt: str, *extra_system: str) -> None:
    """Refuse to start when the system prompt alone leaves no room for a message: every request would fail.
    Raises ConfigError naming the sizes and the settings to change."""
    need = REQUEST_OVERHEAD_TOKENS + sum(
        text_tokens(s) + MESSAGE_OVERHEAD_TOKENS for s in (system_prompt, *extra_system)
    )
    for name, budget in (("chat", chat_budget(settings)), ("vision", vision_budget(settings))):
        # A user message needs some room too: at least a tenth of the budget.
        if need > budget * 0.9:
            raise ConfigError(
                f"The system prompt is too long for the {name} model's request budget: it counts up to {need} "
                f"tokens (UTF-8 bytes) of {max(budget, 0)} (min(context window, TPM) - max completion tokens, "
                f"docs/configuration.md#model-request-budgets). Shorten SYSTEM_PROMPT / SYSTEM_PROMPT_FILE or raise "
                f"{name.upper()}_TPM / {name.upper()}_CONTEXT_WINDOW_TOKENS / lower "
                f"{name.upper()}_MAX_COMPLETION_TOKENS."
            )


def cut_text(text: str, tokens: int) -> str:
    """`text` cut to at most `tokens` (UTF-8 bytes) including the note that says so; never splits a character."""
    note = CUT_NOTE.format(kept="{kept}", total=len(text))
    room = tokens - text_tokens(note.format(kept=len(text)))
    if room <= 0:  # not even the note fits: the bare start of the message is the most useful thing to send
        return text.encode("utf-8")[: max(0, tokens)].decode("utf-8", errors="ignore")
    kept = text.encode("utf-8")[:room].decode("utf-8", errors="ignore")
    return kept + note.format(kept=len(kept))


def _cut_message(message: dict[str, Any], tokens: int) -> dict[str, Any]:
    content = message.get("content")
    room = tokens - MESSAGE_OVERHEAD_TOKENS
    if isinstance(content, str):
        return {**message, "content": cut_text(content, room)}
    if isinstance(content, list):
        texts = [p for p in content if isinstance(p, dict) and p.get("type") == "text"]
        whole = "\n".join(str(p.get("text", "")) for p in texts)
        others = [p for p in content if not (isinstance(p, dict) and p.get("type") == "text")]
        return {**message, "content": [{"type": "text", "text": cut_text(whole, room)}, *others]}
    return message


def fixed_tokens(system: Sequence[dict[str, Any]], extra_tokens: int = 0) -> int:
    """What every fitting of a request carries whatever its history: the preamble, the system messages, images."""
    return REQUEST_OVERHEAD_TOKENS + extra_tokens + sum(message_tokens(m) for m in system)


def fit_messages(
    system: Sequence[dict[str, Any]],
    history: Sequence[dict[str, Any]],
    new: dict[str, Any],
    budget: int,
    extra_tokens: int = 0,
) -> Fitted:
    """`system + history + [new]`, with the oldest remembered messages left out until the whole fits in `budget`
    tokens (`extra_tokens`: what the request carries besides text, e.g. an image). The new message is never dropped;
    if it does not fit even alone it is cut, with a note to the model. A history that would start with an answer
    (its question left out) loses that answer too. Raises FixedPartsTooLargeError when the system messages (and
    `extra_tokens`) alone do not fit."""
    fixed = fixed_tokens(system, extra_tokens)
    if fixed + MESSAGE_OVERHEAD_TOKENS >= budget:
        raise FixedPartsTooLargeError("request_budget_exceeded", f"fixed parts need {fixed} of {budget} tokens")
    new_tokens = message_tokens(new)
    if fixed + new_tokens > budget:
        cut = _cut_message(new, budget - fixed)
        return Fitted([*system, cut], len(history), True, fixed + message_tokens(cut))
    used = fixed + new_tokens
    kept: list[dict[str, Any]] = []
    for message in reversed(history):
        cost = message_tokens(message)
        if used + cost > budget:
            break
        kept.append(message)
        used += cost
    kept.reverse()
    while kept and kept[0].get("role") == "assistant":
        used -= message_tokens(kept.pop(0))
    return Fitted([*system, *kept, new], len(history) - len(kept), False, used)
