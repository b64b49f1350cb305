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

    from workers.clients.rate_limit import RateLimited
    from workers.errors import PermanentError, TransientError
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


class _MemoryRedis:
    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    def set(self, key: str, value: bytes, ex: int | None = None) -> None:
        self.data[key] = value

    def delete(self, *keys: str) -> None:
        for key in keys:
            self.data.pop(key, None)


class _SpeakingGroq:
    def __init__(self) -> None:
        self.inputs: list[str] = []

    def speak(self, model: str, voice: str, text: str) -> bytes:
        from tests.fakes.groq_fake import tone_wav

        self.inputs.append(text)
        return tone_wav(1.0)


class _SpeechCtx:
    def __init__(self, s: Settings) -> None:
        self.settings = s
        self.redis = _MemoryRedis()
        self.groq = _SpeakingGroq()


def test_a_note_over_the_inline_play_limit_is_not_sent_as_voice() -> None:
    """Real ffmpeg: the encoded note is larger than VOICE_NOTE_MAX_BYTES, so speaking fails and the caller answers
    with text (the 512 KB rule of WhatsApp's inline play button, here with a tiny limit)."""
    import pytest

    from shared.jobs import InboundJob
    from workers.voice.speak import SpeechFailedError, _encode

    job = InboundJob(
        job_id="j",
        message_id="wamid.big",
        message_type="audio",
        conversation="c",
        phone_number_id="p",
        received_at=0.0,
        message={},
    )
    tiny = _SpeechCtx(settings(voice_note_max_bytes="200"))
    with pytest.raises(SpeechFailedError) as failed:
        _encode(tiny, job, "Hello there. This is a spoken answer.", "tts", "autumn")  # type: ignore[arg-type]
    assert failed.value.cause == "voice_note_too_large"
    assert tiny.groq.inputs == ["Hello there. This is a spoken answer."]

    roomy = _SpeechCtx(settings(voice_note_max_bytes="524288"))
    note = _encode(roomy, job, "Hello there. This is a spoken answer.", "tts", "autumn")  # type: ignore[arg-type]
    assert note.startswith(b"OggS") and 200 < len(note) <= 524288
