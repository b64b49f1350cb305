"""Whisper's confidence: which segments are left out, over a table of confidence values and phrases."""

from __future__ import annotations

import json

import pytest

from shared.config import Settings
from tests.webhooks import CASE_FIXTURES
from workers.clients.groq import Segment, parse_segments
from workers.pipelines.transcript_confidence import ConfidenceRules, confident_text, why_dropped
from workers.text.hallucinations import DATA_FILE, is_known_hallucination, normalised

RULES = ConfidenceRules.from_settings(Settings())
CASE = json.loads((CASE_FIXTURES / "conversation" / "silent-voice-note.json").read_text())


def segment(text: str, no_speech: float | None, logprob: float | None) -> Segment:
    return Segment(text, 0.0, 1.0, no_speech, logprob)


@pytest.mark.parametrize(
    ("text", "no_speech", "logprob", "seconds", "dropped"),
    [
        # Rule 1, Whisper's own: both signals say silence.
        (" Hmm.", 0.61, -1.01, 6.0, "whisper_rule"),
        (" Hmm.", 0.61, -1.0, 6.0, "whisper_rule"),  # Whisper keeps a segment only above the logprob threshold
        (" Hmm.", 0.60, -1.5, 6.0, ""),  # not above the no-speech threshold
        (" Hmm.", 0.95, -0.99, 6.0, ""),  # confident words: Whisper's rule keeps them
        # Rule 2: a high no_speech_prob and a phrase Whisper invents on silence, in any listed language.
        (" Thank you.", 0.91, -0.94, 6.0, "known_hallucination"),  # the handed case's segment, on longer audio
        (" Thanks for watching!", 0.7, -0.3, 30.0, "known_hallucination"),
        (" ¡Gracias por ver el video!", 0.8, -0.5, 10.0, "known_hallucination"),
        (" Legendas pela comunidade Amara.org", 0.65, -0.4, 10.0, "known_hallucination"),
        (" Sous-titres réalisés par la communauté d'Amara.org", 0.9, -0.2, 10.0, "known_hallucination"),
        (" Untertitel der Amara.org-Community", 0.9, -0.2, 10.0, "known_hallucination"),
        (" Sottotitoli creati dalla comunità Amara.org.", 0.9, -0.2, 10.0, "known_hallucination"),
        (" شكرا لكم على المشاهدة", 0.9, -0.2, 10.0, "known_hallucination"),
        (" THANK YOU", 0.9, -0.2, 10.0, "known_hallucination"),  # case and punctuation do not matter
        # ... but the user really saying it (low no_speech_prob) keeps their words.
        (" Thank you.", 0.05, -0.3, 1.2, ""),
        (" Merci.", 0.2, -0.4, 1.0, ""),
        # ... and more than the phrase is not the phrase.
        (" Thank you, that really helped with my trip.", 0.9, -0.3, 6.0, ""),
        # Rule 3: very short audio needs both signals confident.
        (" Thank you.", 0.91, -0.94, 2.0, "known_hallucination"),  # the handed case exactly
        (" Okay.", 0.7, -0.5, 1.5, "short_and_unsure"),
        (" Okay.", 0.1, -1.2, 1.5, "short_and_unsure"),
        (" Okay.", 0.1, -0.5, 1.5, ""),
        (" Okay.", 0.7, -0.5, 2.5, ""),  # not short: rule 1 alone decides
        (" Okay.", 0.7, -0.5, None, ""),  # duration unknown: rule 3 does not apply
        # Missing figures never drop anything.
        (" Thank you.", None, None, 1.0, ""),
    ],
)
def test_confidence_table(text: str, no_speech: float | None, logprob: float | None, seconds, dropped: str) -> None:
    assert why_dropped(segment(text, no_speech, logprob), RULES, seconds) == dropped


def test_the_handed_silent_note_leaves_nothing() -> None:
    answer = CASE["setup"]["groq_fake_transcription_verbose_json"]
    heard = confident_text(answer["text"], parse_segments(answer["segments"]), RULES, answer["duration"])
    assert heard.text == ""
    assert heard.dropped == {"known_hallucination": 1}


def test_only_the_unsure_segments_go() -> None:
    segments = [segment(" Hi, I need a taxi", 0.02, -0.2), segment(" Thank you.", 0.93, -0.9)]
    heard = confident_text(" Hi, I need a taxi Thank you.", segments, RULES, 8.0)
    assert heard.text == "Hi, I need a taxi"
    assert heard.dropped == {"known_hallucination": 1}


def test_confident_transcripts_keep_whispers_own_text() -> None:
    segments = [segment(" Hola,", 0.01, -0.2), segment(" ¿qué tal?", 0.01, -0.3)]
    assert confident_text(" Hola, ¿qué tal?", segments, RULES, 3.0).text == "Hola, ¿qué tal?"
    assert confident_text(" no segments", [], RULES, 1.0).text == "no segments"


def test_thresholds_come_from_settings() -> None:
    strict = ConfidenceRules.from_settings(Settings(stt_no_speech_prob=0.3, stt_short_audio_seconds=0))
    assert why_dropped(segment(" Hmm.", 0.4, -1.2), strict, 1.0) == "whisper_rule"
    assert why_dropped(segment(" Hmm.", 0.4, -1.2), RULES, 5.0) == ""


def test_malformed_segments_are_skipped_not_raised() -> None:
    parsed = parse_segments([{"text": " a", "no_speech_prob": "high", "avg_logprob": True}, "junk", None])
    assert parsed == (Segment(" a", 0.0, 0.0, None, None),)
    assert parse_segments(None) == ()


def test_every_listed_phrase_has_a_public_source_and_the_languages_are_covered() -> None:
    data = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    assert {"en", "es", "pt", "fr", "de", "it", "ar"} <= set(data["phrases"])
    for entries in data["phrases"].values():
        for entry in entries:
            assert data["sources"][entry["source"]].startswith("https://")
            assert is_known_hallucination(entry["text"])


def test_normalising_ignores_case_punctuation_and_spacing_in_every_script() -> None:
    assert normalised(" ¡Gracias   por ver!") == "gracias por ver"
    assert normalised("Merci d'avoir regardé cette vidéo !") == "merci d avoir regardé cette vidéo"
    assert normalised("شكرا، لكم") == "شكرا لكم"
