"""Chat requests: system prompt + remembered turns + the new user turn."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from workers.delivery.memory import MemoryEntry


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
