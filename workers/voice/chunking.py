"""Split a reply into TTS requests: Orpheus accepts at most 200 characters per request.

Chunks follow sentence boundaries (so each request is a natural phrase with natural prosody), then clause
punctuation, then words; a single "word" longer than the limit (a URL) is cut hard. Joining the chunks with single
spaces gives back the whole text, whitespace-normalised, in order: nothing is dropped or reordered.
"""

from __future__ import annotations

import re

TTS_MAX_CHARS = 200

_SENTENCE_END = re.compile(r"(?<=[.!?\u2026\u3002\uff01\uff1f\u061f])\s+|\n+")
_CLAUSE_END = re.compile(r"(?<=[,;:\u060c])\s+")
_MARKUP = re.compile(r"[*~`]+|(?<!\w)_+|_+(?!\w)")
_BULLET = re.compile(r"^\s*(?:[-\u2022]|#+)\s+", re.MULTILINE)


def speakable_text(text: str) -> str:
    """WhatsApp/Markdown markup read aloud sounds like noise ("asterisk"); keep the words, line breaks intact."""
    return _MARKUP.sub("", _BULLET.sub("", text)).strip()


def _normalise(text: str) -> str:
    return " ".join(text.split())


def _pack(pieces: list[str], limit: int) -> list[str]:
    """Greedily join pieces (each <= limit) with spaces into chunks of at most `limit` characters."""
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        if not current:
            current = piece
        elif len(current) + 1 + len(piece) <= limit:
            current = f"{current} {piece}"
        else:
            chunks.append(current)
            current = piece
    if current:
        chunks.append(current)
    return chunks


def _split_long(sentence: str, limit: int) -> list[str]:
    """A sentence over the limit: split at clauses, then words, then (for giant tokens) characters."""
    pieces: list[str] = []
    for clause in _CLAUSE_END.split(sentence):
        if len(clause) <= limit:
            pieces.append(clause)
            continue
        for word in clause.split(" "):
            pieces.extend(word[i : i + limit] for i in range(0, len(word), limit))
    return _pack([p for p in pieces if p], limit)


def chunk_for_tts(text: str, limit: int = TTS_MAX_CHARS) -> list[str]:
    if limit < 1:
        raise ValueError("limit must be positive")
    pieces: list[str] = []
    for raw in _SENTENCE_END.split(text):
        sentence = _normalise(raw)
        if not sentence:
            continue
        pieces.extend([sentence] if len(sentence) <= limit else _split_long(sentence, limit))
    return _pack(pieces, limit)
