from __future__ import annotations

from shared.config import Settings
from workers.voice.speak import tts_voice_for


def settings(**values: str) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_default_speaks_english_only() -> None:
    s = settings()
    assert s.voice_reply_language_set == frozenset({"en"})
    assert tts_voice_for(s, "en") == ("canopylabs/orpheus-v1-english", "autumn")
    assert tts_voice_for(s, "es") is None
    assert tts_voice_for(s, "") is None


def test_arabic_speaks_only_with_its_own_model() -> None:
    without = settings(voice_reply_languages="en, AR")
    assert without.voice_reply_language_set == frozenset({"en", "ar"})
    assert tts_voice_for(without, "ar") is None
    with_model = settings(voice_reply_languages="en,ar", tts_arabic_model="canopylabs/orpheus-arabic-saudi")
    assert tts_voice_for(with_model, "ar") == ("canopylabs/orpheus-arabic-saudi", "noura")


def test_voice_replies_can_be_switched_off() -> None:
    assert tts_voice_for(settings(voice_reply_languages=""), "en") is None
