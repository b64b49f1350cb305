"""A conversation's language: decided from the user's own words, remembered with their turns, read for fixed replies.

Each user turn in memory carries `lang`, the conversation's language once that turn was heard
(`workers.text.languages.next_language`: sticky across "ok" and names, switched by a clear message in another
language). A voice turn takes Whisper's detected language. Fixed sentences (apologies, notices, the request sent
with an uncaptioned image) read it back instead of guessing from the last remembered text, which may be a
one-word "thanks" or an instruction we stored for the model.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.jobs import InboundJob
from workers.context import WorkerContext
from workers.delivery.memory import MemoryEntry
from workers.text.languages import language_code, next_language


def remembered_language(history: Sequence[MemoryEntry]) -> str:
    """The language of the latest user turn that has one; "" for a new conversation."""
    for turn in reversed(history):
        if turn["role"] == "user" and turn.get("lang"):
            return turn.get("lang", "")
    return ""


def language_after(history: Sequence[MemoryEntry], words: str, spoken: str = "") -> str:
    """The conversation's language once the user said `words` (Whisper's `spoken` language wins when given);
    stored with the user's turn. "" when neither the words nor the history tell."""
    return language_code(spoken) or next_language(words, remembered_language(history))


def language_for_reply(
    ctx: WorkerContext, job: InboundJob, words: str = "", history: Sequence[MemoryEntry] | None = None
) -> str:
    """The language for a fixed sentence to this user, from this message's `words` and the remembered language
    (memory is loaded when `history` is not given). "" when unknown: `phrase()` then answers in English."""
    if history is None:
        loaded = ctx.ledgers.of(job).history
        history = loaded if loaded is not None else ctx.memory.load(job.conversation)
    turns = history
    return language_after(turns, words)
