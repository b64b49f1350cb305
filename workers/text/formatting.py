"""LLM Markdown to WhatsApp formatting, and splitting to WhatsApp's 4096-character text limit."""

from __future__ import annotations

import re

MAX_TEXT = 4096

_FENCE = re.compile(r"```.*?```", re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC_STAR = re.compile(r"(?<![\*\w])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\*\w])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
_LINK = re.compile(r"!?\[([^\]]+)\]\((\S+?)\)")
_BULLET = re.compile(r"^(\s*)[*+]\s+", re.MULTILINE)
_RULE = re.compile(r"^[ \t]*([-*_])[ \t]*(\1[ \t]*){2,}$", re.MULTILINE)
_BOLD_MARK = "\x00"


def _convert_prose(text: str) -> str:
    text = _RULE.sub("", text)
    text = _HEADING.sub(lambda m: f"{_BOLD_MARK}{m.group(1)}{_BOLD_MARK}", text)
    text = _LINK.sub(lambda m: m.group(1) if m.group(1) == m.group(2) else f"{m.group(1)} ({m.group(2)})", text)
    text = _BULLET.sub(r"\1- ", text)
    text = _BOLD.sub(lambda m: f"{_BOLD_MARK}{m.group(2)}{_BOLD_MARK}", text)
    text = _ITALIC_STAR.sub(r"_\1_", text)
    text = _STRIKE.sub(r"~\1~", text)
    return text.replace(_BOLD_MARK, "*")


def markdown_to_whatsapp(text: str) -> str:
    """Convert outside code: code fences and inline code keep their content (WhatsApp renders both)."""
    out: list[str] = []
    position = 0
    for match in _FENCE.finditer(text):
        out.append(_convert_outside_inline_code(text[position : match.start()]))
        out.append(match.group(0))
        position = match.end()
    out.append(_convert_outside_inline_code(text[position:]))
    return re.sub(r"\n{3,}", "\n\n", "".join(out)).strip()


def _convert_outside_inline_code(text: str) -> str:
    out: list[str] = []
    position = 0
    for match in _INLINE_CODE.finditer(text):
        out.append(_convert_prose(text[position : match.start()]))
        out.append(match.group(0))
        position = match.end()
    out.append(_convert_prose(text[position:]))
    return "".join(out)


def _cut_point(text: str, limit: int) -> int:
    window = text[:limit]
    for separator in ("\n\n", "\n", ". ", "! ", "? ", "; ", ", ", " "):
        index = window.rfind(separator)
        if index > limit // 2:
            return index + len(separator)
    return limit


def split_message(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Split at the most natural boundary before `limit`: paragraph, line, sentence, word, else hard."""
    parts: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut = _cut_point(rest, limit)
        head, rest = rest[:cut].rstrip(), rest[cut:].lstrip()
        if head:
            parts.append(head)
    if rest:
        parts.append(rest)
    return parts
