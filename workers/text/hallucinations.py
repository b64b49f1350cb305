"""Phrases Whisper is known to invent on silence and noise, per language, from `whisper_hallucinations.json`
(each entry with the public report it comes from)."""

from __future__ import annotations

import json
import unicodedata
from functools import lru_cache
from pathlib import Path

DATA_FILE = Path(__file__).with_name("whisper_hallucinations.json")


def normalised(text: str) -> str:
    """Case, punctuation (any script's) and spacing removed: "¡Gracias por ver!" -> "gracias por ver"."""
    kept = "".join(" " if unicodedata.category(ch).startswith(("P", "Z")) else ch for ch in text.casefold())
    return " ".join(kept.split())


@lru_cache(maxsize=1)
def known_phrases() -> dict[str, frozenset[str]]:
    """Language (ISO 639-1) -> the normalised phrases of that language."""
    data = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    return {
        language: frozenset(normalised(entry["text"]) for entry in entries)
        for language, entries in data["phrases"].items()
    }


def is_known_hallucination(text: str) -> bool:
    """True when `text` as a whole is one of the phrases, in any language: on silence Whisper's language guess is
    as unreliable as its words, so a Portuguese user's silent note may come back as English "Thank you."."""
    phrase = normalised(text)
    return bool(phrase) and any(phrase in phrases for phrases in known_phrases().values())
