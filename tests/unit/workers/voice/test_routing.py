"""TTS_VOICES: the per-language routing table, its aliases (VOICE_REPLY_LANGUAGES, TTS_MODEL/TTS_VOICE,
TTS_ARABIC_*) and the clear errors a bad entry gets."""

from __future__ import annotations

import pytest

from shared.config import Settings
from workers.voice.routing import Backend, RoutingError, TTSRoute, describe, parse_tts_voices, route_for, voice_routes

ORPHEUS_EN = "canopylabs/orpheus-v1-english"
ORPHEUS_AR = "canopylabs/orpheus-arabic-saudi"


def settings(**values: str) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_the_defaults_speak_english_with_orpheus_only() -> None:
    s = settings()
    assert voice_routes(s) == {"en": TTSRoute("en", Backend.GROQ, "autumn", ORPHEUS_EN)}
    assert route_for(s, "es") is None
    assert route_for(s, "") is None


def test_the_older_settings_still_work_as_aliases() -> None:
    s = settings(voice_reply_languages="en, AR", tts_voice="troy")
    assert voice_routes(s) == {"en": TTSRoute("en", Backend.GROQ, "troy", ORPHEUS_EN)}  # no Arabic model: text
    s = settings(voice_reply_languages="en,ar", tts_arabic_model=ORPHEUS_AR)
    assert route_for(s, "ar") == TTSRoute("ar", Backend.GROQ, "noura", ORPHEUS_AR)
    assert voice_routes(settings(voice_reply_languages="")) == {}


def test_tts_voices_adds_and_overrides_per_language() -> None:
    s = settings(
        tts_voices="es=piper:es_MX-ald-medium, fr=openai:alloy, de=openai:nova@gpt-4o-mini-tts, en=groq:diana",
        openai_tts_model="kokoro",
    )
    assert voice_routes(s) == {
        "en": TTSRoute("en", Backend.GROQ, "diana", ORPHEUS_EN),
        "es": TTSRoute("es", Backend.PIPER, "es_MX-ald-medium"),
        "fr": TTSRoute("fr", Backend.OPENAI, "alloy", "kokoro"),
        "de": TTSRoute("de", Backend.OPENAI, "nova", "gpt-4o-mini-tts"),
    }


def test_arabic_on_groq_takes_the_arabic_model_unless_one_is_named() -> None:
    s = settings(tts_voices="ar=groq:noura", tts_arabic_model=ORPHEUS_AR)
    assert route_for(s, "ar") == TTSRoute("ar", Backend.GROQ, "noura", ORPHEUS_AR)
    s = settings(tts_voices="ar=groq:fahad@my/arabic")
    assert route_for(s, "ar") == TTSRoute("ar", Backend.GROQ, "fahad", "my/arabic")


def test_text_switches_a_language_off() -> None:
    assert voice_routes(settings(tts_voices="en=text, es=piper:x")) == {"es": TTSRoute("es", Backend.PIPER, "x")}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("es", r"entry 1 \('es'\): write LANG=BACKEND:VOICE"),
        ("es=", "write LANG=BACKEND:VOICE"),
        ("spanish=piper:x", "two-letter ISO 639-1"),
        ("es=pipr:x", "unknown backend 'pipr'"),
        ("es=piper", "no voice after piper:"),
        ("es=groq:", "no voice after groq:"),
        ("es=groq:autumn@", "nothing after @"),
        ("es=piper:x@model", "a Piper voice is its own model"),
        ("es=piper:../etc/passwd", "file name in PIPER_VOICES_DIR"),
        ("en=groq:autumn, es=piper:x, es=text", r"entry 3 .*es is routed twice"),
    ],
)
def test_a_bad_entry_is_refused_with_a_clear_message(value: str, message: str) -> None:
    with pytest.raises(RoutingError, match=message):
        parse_tts_voices(value)


def test_empty_entries_and_spaces_are_ignored() -> None:
    assert parse_tts_voices(" , en = groq : autumn ,, ") == {"en": TTSRoute("en", Backend.GROQ, "autumn")}


def test_describe_names_every_route_for_the_start_up_log() -> None:
    s = settings(tts_voices="es=piper:es_MX-ald-medium")
    assert describe(voice_routes(s)) == f"en=groq:autumn@{ORPHEUS_EN}, es=piper:es_MX-ald-medium"
    assert describe({}) == "none (every reply is text)"
