"""LLM Markdown to WhatsApp formatting, and splitting to WhatsApp's 4096-character text limit.

The model writes CommonMark; WhatsApp has its own small syntax (https://faq.whatsapp.com/539178204879377):
`*bold*`, `_italic_`, `~strikethrough~`, `` `inline code` ``, ```` ``` ```` blocks, `- ` and `1. ` lists and `> `
quotes. markdown-it-py parses the Markdown (so nesting, escapes and code spans follow the CommonMark spec) and
this module renders its syntax tree in WhatsApp's syntax:

- headings become bold lines, links become "text (url)", images their alt text and URL, rules disappear;
- bold inside bold (a bold word in a heading) keeps one pair of markers, since WhatsApp cannot nest a marker
  in itself; `***x***` becomes `_*x*_`;
- escaped characters (`\\*x\\*`) come out as the literal characters: WhatsApp has no escape syntax;
- raw HTML is shown as typed (the parser's `html` option is off), tables as "a | b" rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

MAX_TEXT = 4096

_PARSER = MarkdownIt("commonmark", {"html": False}).enable(["strikethrough", "table"])
# Inline marker per Markdown emphasis node: WhatsApp's syntax for the same thing.
_MARKERS = {"strong": "*", "em": "_", "s": "~"}
_BLANK_LINES = re.compile(r"\n{3,}")


def markdown_to_whatsapp(text: str) -> str:
    """Render Markdown `text` in WhatsApp's formatting syntax. Never raises: any string is valid Markdown."""
    root = SyntaxTreeNode(_PARSER.parse(text))
    return _BLANK_LINES.sub("\n\n", _blocks(root.children, "\n\n")).strip()


# --- inline ------------------------------------------------------------------------------------------------


def _inline(nodes: list[SyntaxTreeNode], active: frozenset[str] = frozenset()) -> str:
    pieces = [_inline_node(node, active) for node in nodes]
    out: list[str] = []
    for index, piece in enumerate(pieces):
        if isinstance(piece, str):
            out.append(piece)
            continue
        before = out[-1][-1:] if out and out[-1] else ""
        following = pieces[index + 1] if index + 1 < len(pieces) else ""
        after = following[:1] if isinstance(following, str) else following.marker
        # WhatsApp formats only whole words: inside a word ("2*3*4") the characters the model wrote are kept.
        intraword = before.isalnum() or after.isalnum()
        out.append(piece.render(piece.markup if intraword else piece.marker))
    return "".join(out)


@dataclass(frozen=True, slots=True)
class _Span:
    """An emphasis span whose markers depend on its neighbours."""

    marker: str  # WhatsApp's
    markup: str  # the Markdown the model wrote
    inner: str

    def render(self, marker: str) -> str:
        return f"{marker}{self.inner}{marker}"


def _inline_node(node: SyntaxTreeNode, active: frozenset[str]) -> str | _Span:
    kind = node.type
    if kind in _MARKERS:
        marker = _MARKERS[kind]
        inner = _inline(node.children, active | {marker})
        # WhatsApp cannot nest a marker inside itself, and a marker next to a space is shown as typed.
        if marker in active or not inner.strip():
            return inner
        return _Span(marker, node.markup, inner)
    if kind == "code_inline":
        return f"`{node.content}`"
    if kind in ("softbreak", "hardbreak"):
        return "\n"
    if kind in ("link", "image"):
        return _target(_inline(node.children, active), str(node.attrs.get("href", node.attrs.get("src", ""))))
    return node.content  # text, html_inline (shown as typed)


def _target(label: str, url: str) -> str:
    """A link or an image as "label (url)"; just the URL when the label says nothing more (autolinks)."""
    if not url or label in (url, url.removeprefix("mailto:")):
        return label or url
    return f"{label} ({url})" if label else url


# --- blocks ------------------------------------------------------------------------------------------------


def _blocks(nodes: list[SyntaxTreeNode], separator: str) -> str:
    rendered = (_block(node) for node in nodes)
    return separator.join(part for part in rendered if part)


def _inline_of(node: SyntaxTreeNode, active: frozenset[str] = frozenset()) -> str:
    return "".join(_inline(child.children, active) for child in node.children if child.type == "inline")


def _block(node: SyntaxTreeNode) -> str:
    render = _BLOCK_RENDERERS.get(node.type)
    if render is not None:
        return render(node)
    return node.content.strip("\n")  # html_block and anything a future parser version adds: as typed


def _heading(node: SyntaxTreeNode) -> str:
    inner = _inline_of(node, frozenset({"*"})).strip()
    return f"*{inner}*" if inner else ""


def _code(node: SyntaxTreeNode) -> str:
    return "```\n" + node.content.rstrip("\n") + "\n```"


def _list(node: SyntaxTreeNode) -> str:
    start = int(node.attrs.get("start", 1)) if node.type == "ordered_list" else 0
    lines: list[str] = []
    for index, item in enumerate(node.children):
        prefix = f"{start + index}. " if node.type == "ordered_list" else "- "
        body = _blocks(item.children, "\n") or ""
        first, *rest = body.split("\n")
        lines.append(prefix + first)
        lines.extend(("  " + line) if line else line for line in rest)
    return "\n".join(lines)


def _quote(node: SyntaxTreeNode) -> str:
    body = _blocks(node.children, "\n\n")
    return "\n".join(f"> {line}" if line else ">" for line in body.split("\n"))


def _table(node: SyntaxTreeNode) -> str:
    rows = [row for section in node.children for row in section.children]
    return "\n".join(" | ".join(_inline_of(cell).strip() for cell in row.children) for row in rows)


_BLOCK_RENDERERS: dict[str, Callable[[SyntaxTreeNode], str]] = {
    "paragraph": _inline_of,
    "heading": _heading,
    "fence": _code,
    "code_block": _code,
    "bullet_list": _list,
    "ordered_list": _list,
    "blockquote": _quote,
    "table": _table,
    "hr": lambda _node: "",
}


# --- splitting ---------------------------------------------------------------------------------------------


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
