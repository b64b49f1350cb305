from __future__ import annotations

import pytest

from workers.text.formatting import MAX_TEXT, markdown_to_whatsapp, split_message


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("**bold**", "*bold*"),
        ("__bold__", "*bold*"),
        ("*italic*", "_italic_"),
        ("~~gone~~", "~gone~"),
        ("## Heading", "*Heading*"),
        ("[docs](https://example.com)", "docs (https://example.com)"),
        ("* one\n* two", "- one\n- two"),
        ("a **b** and *c*", "a *b* and _c_"),
        ("```\n**raw**\n```", "```\n**raw**\n```"),
        ("use `**x**` here", "use `**x**` here"),
        ("2 * 3 * 4", "2 * 3 * 4"),
        ("line\n\n\n\nnext", "line\n\nnext"),
    ],
)
def test_markdown_to_whatsapp(markdown: str, expected: str) -> None:
    assert markdown_to_whatsapp(markdown) == expected


def test_split_keeps_every_word_in_order_within_the_limit() -> None:
    text = " ".join(f"word{i}" for i in range(3000))
    parts = split_message(text)
    assert len(parts) > 1
    assert all(len(part) <= MAX_TEXT for part in parts)
    assert " ".join(parts).split() == text.split()


def test_split_prefers_paragraph_boundaries() -> None:
    paragraph = "x" * 3000
    parts = split_message(f"{paragraph}\n\n{paragraph}")
    assert parts == [paragraph, paragraph]


def test_split_hard_cuts_unbroken_text() -> None:
    parts = split_message("y" * 9000)
    assert [len(p) for p in parts] == [4096, 4096, 808]


def test_short_text_is_one_part() -> None:
    assert split_message("  hello  ") == ["hello"]
