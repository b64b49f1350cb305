from __future__ import annotations

import random

import pytest

from workers.voice.chunking import TTS_MAX_CHARS, chunk_for_tts, speakable_text


def covers(chunks: list[str], text: str) -> bool:
    return " ".join(chunks) == " ".join(text.split())


def test_short_text_is_one_chunk() -> None:
    assert chunk_for_tts("Hello there. How are you?") == ["Hello there. How are you?"]


def test_empty_text_has_no_chunks() -> None:
    assert chunk_for_tts("  \n ") == []


def test_sentences_are_packed_up_to_the_limit_and_never_cut_when_they_fit() -> None:
    sentences = [f"This is sentence number {i}, which says a little something." for i in range(12)]
    text = " ".join(sentences)
    chunks = chunk_for_tts(text)
    assert len(chunks) > 1
    assert all(len(c) <= TTS_MAX_CHARS for c in chunks)
    assert covers(chunks, text)
    # Every chunk ends at a sentence end: no sentence was split across two requests.
    assert all(c.endswith(".") for c in chunks)


def test_a_sentence_longer_than_the_limit_splits_at_clauses_then_words() -> None:
    clause = "and then the replicas agree on a single value even when some of them crash"
    text = ", ".join([clause] * 6) + "."
    chunks = chunk_for_tts(text)
    assert all(len(c) <= TTS_MAX_CHARS for c in chunks)
    assert covers(chunks, text)
    assert chunks[0].endswith(",")

    no_punctuation = " ".join(["word"] * 120)
    word_chunks = chunk_for_tts(no_punctuation)
    assert all(len(c) <= TTS_MAX_CHARS for c in word_chunks)
    assert all(not c.startswith(" ") and "wor d" not in c for c in word_chunks)
    assert covers(word_chunks, no_punctuation)


def test_a_giant_token_is_cut_hard() -> None:
    url = "https://example.com/" + "x" * 450
    chunks = chunk_for_tts(f"See {url} for details.")
    assert all(len(c) <= TTS_MAX_CHARS for c in chunks)
    assert "".join(chunks).replace(" ", "") == f"See{url}fordetails."


def test_line_breaks_and_other_scripts_are_boundaries() -> None:
    text = "First line without a stop\nSecond line\u3002\u7b2c\u4e09\u53e5\uff01Last one\u061f end"
    chunks = chunk_for_tts(text, limit=30)
    assert all(len(c) <= 30 for c in chunks)
    assert covers(chunks, text)


@pytest.mark.parametrize("seed", range(20))
def test_random_texts_always_fit_and_cover_in_order(seed: int) -> None:
    rng = random.Random(seed)
    words = ["a", "distributed", "system", "is", "one", "where", "failure", "https://x.y/" + "z" * 60, "ok", "¿qué?"]
    text = "".join(
        rng.choice(words) + rng.choice([" ", " ", ". ", "! ", ", ", "\n", "?  "]) for _ in range(rng.randint(1, 300))
    )
    chunks = chunk_for_tts(text)
    assert all(0 < len(c) <= TTS_MAX_CHARS for c in chunks)
    assert covers(chunks, text)


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        chunk_for_tts("hi", limit=0)


def test_speakable_text_drops_markup_but_keeps_words() -> None:
    assert speakable_text("*Bold* and _italic_ and ~gone~ `code`") == "Bold and italic and gone code"
    assert speakable_text("- first\n- second\n# Title") == "first\nsecond\nTitle"
    assert speakable_text("snake_case stays") == "snake_case stays"
