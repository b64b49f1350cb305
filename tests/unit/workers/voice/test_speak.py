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


class _Ctx:
    def __init__(self, s: Settings) -> None:
        self.settings = s


def test_a_short_tts_rate_limit_defers_the_job_instead_of_sleeping() -> None:
    import pytest

    from shared.errors import PermanentError, TransientError
    from workers.rate_limit import RateLimited
    from workers.voice.speak import defer_if_short

    ctx = _Ctx(settings(tts_max_wait_seconds="10"))
    with pytest.raises(RateLimited) as raised:
        defer_if_short(ctx, TransientError("groq_rate_limited", "per minute", retry_after=3), "tts")  # type: ignore[arg-type]
    assert raised.value.retry_after == 3
    budget = RateLimited("tts", "requests", 2.5)
    with pytest.raises(RateLimited):
        defer_if_short(ctx, budget, "tts")  # type: ignore[arg-type]
    # A daily quota (hours) and anything that is not a rate limit return: the caller answers as text now.
    defer_if_short(ctx, TransientError("groq_rate_limited", "per day", retry_after=21600), "tts")  # type: ignore[arg-type]
    defer_if_short(ctx, TransientError("groq_http_503", "down", retry_after=1), "tts")  # type: ignore[arg-type]
    defer_if_short(ctx, PermanentError("groq_model_terms_required"), "tts")  # type: ignore[arg-type]
