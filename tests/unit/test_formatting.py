from __future__ import annotations

import pytest

from workers.text.formatting import MAX_TEXT, markdown_to_whatsapp, split_message


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        # the basics
        ("**bold**", "*bold*"),
        ("__bold__", "*bold*"),
        ("*italic*", "_italic_"),
        ("_italic_", "_italic_"),
        ("~~gone~~", "~gone~"),
        ("## Heading", "*Heading*"),
        ("# Title\nText", "*Title*\n\nText"),
        ("[docs](https://example.com)", "docs (https://example.com)"),
        ("<https://example.com/a>", "https://example.com/a"),
        ("[https://example.com](https://example.com)", "https://example.com"),
        ("![a chart](https://example.com/c.png)", "a chart (https://example.com/c.png)"),
        ("a **b** and *c*", "a *b* and _c_"),
        ("2 * 3 * 4", "2 * 3 * 4"),
        ("line\n\n\n\nnext", "line\n\nnext"),
        ("line one\nline two", "line one\nline two"),
        ("above\n\n---\n\nbelow", "above\n\nbelow"),
        # nested
        ("***x***", "_*x*_"),
        ("**bold *and italic* here**", "*bold _and italic_ here*"),
        ("*italic **and bold** here*", "_italic *and bold* here_"),
        ("## **Bold** in a heading", "*Bold in a heading*"),
        ("[**bold link**](https://example.com)", "*bold link* (https://example.com)"),
        ("~~**gone**~~", "~*gone*~"),
        # escaped and literal characters: WhatsApp has no escapes, the characters are shown as typed
        (r"\*x\*", "*x*"),
        (r"\_x\_", "_x_"),
        (r"\# not a heading", "# not a heading"),
        ("snake_case_name", "snake_case_name"),
        ("2*3*4 inside a word", "2*3*4 inside a word"),
        ("**unclosed", "**unclosed"),
        ("<b>html</b> stays text", "<b>html</b> stays text"),
        # code: kept verbatim
        ("```\n**raw**\n```", "```\n**raw**\n```"),
        ("```python\nprint('*x*')\n```", "```\nprint('*x*')\n```"),
        ("    indented code", "```\nindented code\n```"),
        ("use `**x**` here", "use `**x**` here"),
        # lists and quotes
        ("* one\n* two", "- one\n- two"),
        ("- a\n- b\n  - nested\n- c", "- a\n- b\n  - nested\n- c"),
        ("1. first\n2. second", "1. first\n2. second"),
        ("3. third\n4. fourth", "3. third\n4. fourth"),
        ("1. **Step one**: go\n2. *Step two*", "1. *Step one*: go\n2. _Step two_"),
        ("- item\n\n  more of it\n- next", "- item\n  more of it\n- next"),
        ("> quoted\n> words", "> quoted\n> words"),
        # tables become rows
        ("| a | b |\n|---|---|\n| 1 | **2** |", "a | b\n1 | *2*"),
    ],
)
def test_markdown_to_whatsapp(markdown: str, expected: str) -> None:
    assert markdown_to_whatsapp(markdown) == expected


def test_formatting_then_splitting_keeps_every_word() -> None:
    paragraphs = [f"**Point {i}.** " + " ".join(f"word{i}_{j}" for j in range(60)) for i in range(40)]
    formatted = markdown_to_whatsapp("\n\n".join(paragraphs))
    parts = split_message(formatted)
    assert len(parts) > 1
    assert all(len(part) <= MAX_TEXT for part in parts)
    assert [p.startswith("*Point ") for p in formatted.split("\n\n")] == [True] * 40
    assert " ".join(parts).split() == formatted.split()


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
