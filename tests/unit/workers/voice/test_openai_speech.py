"""The OpenAI-compatible speech client against a loopback server speaking that wire format."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.openai_speech_fake import API_KEY, PCM_RATE, OpenAISpeechFake, openai_error
from tests.fakes.server import Fault
from workers.clients.openai_speech import OpenAISpeechClient
from workers.clients.rate_limit import RateLimited
from workers.errors import PermanentError, TransientError
from workers.media.wav import parse_wav
from workers.voice.backends import OpenAICompatible


@pytest.fixture(scope="module")
def fake() -> Iterator[OpenAISpeechFake]:
    server = OpenAISpeechFake()
    server.server.start()
    yield server
    server.server.stop()


@pytest.fixture
def client(fake: OpenAISpeechFake) -> Iterator[OpenAISpeechClient]:
    fake.reset()
    speech = OpenAISpeechClient(fake.url + "/", API_KEY, timeout=5)
    yield speech
    speech.close()


def test_speaks_wav_with_the_documented_body(fake: OpenAISpeechFake, client: OpenAISpeechClient) -> None:
    audio = parse_wav(client.speak("tts-1", "alloy", "Hola, ¿qué tal?", "wav"))
    assert audio.sample_rate == PCM_RATE and audio.duration > 0.2
    (call,) = fake.calls
    assert call.body == {"model": "tts-1", "voice": "alloy", "input": "Hola, ¿qué tal?", "response_format": "wav"}


def test_pcm_answers_become_audio_at_the_configured_rate(fake: OpenAISpeechFake, client: OpenAISpeechClient) -> None:
    backend = OpenAICompatible(client, "tts-1", "pcm", PCM_RATE, 300)
    wav_backend = OpenAICompatible(client, "tts-1", "wav", PCM_RATE, 300)
    pcm, wav = backend.synthesize("Buenos días.", "nova"), wav_backend.synthesize("Buenos días.", "nova")
    assert pcm.sample_rate == PCM_RATE and pcm.channels == 1 and pcm.bits_per_sample == 16
    assert pcm.frames == wav.frames  # the same samples, without a header
    assert backend.label == "openai:tts-1" and backend.max_chars == 300


@pytest.mark.parametrize(
    ("fault", "kind", "reason", "ops"),
    [
        (openai_error(401, "bad key", code="invalid_api_key"), PermanentError, "tts_http_401", True),
        (
            openai_error(404, "The model `x` does not exist", code="model_not_found"),
            PermanentError,
            "tts_http_404",
            True,
        ),
        (openai_error(400, "input too long"), PermanentError, "tts_http_400", False),
        (openai_error(503, "overloaded", type_="server_error"), TransientError, "tts_http_503", False),
    ],
)
def test_errors_are_classified(
    fake: OpenAISpeechFake, client: OpenAISpeechClient, fault: Fault, kind: type, reason: str, ops: bool
) -> None:
    fake.faults.add("speech", fault)
    with pytest.raises(kind) as raised:
        client.speak("tts-1", "alloy", "hello")
    assert raised.value.reason == reason
    assert getattr(raised.value, "ops_alert", False) is ops


def test_a_429_is_a_deferral_with_the_servers_wait(fake: OpenAISpeechFake, client: OpenAISpeechClient) -> None:
    fake.faults.add("speech", Fault(429, {"error": {"message": "slow down", "type": "requests"}}, {"retry-after": "7"}))
    with pytest.raises(RateLimited) as raised:
        client.speak("tts-1", "alloy", "hello")
    assert raised.value.retry_after == 7 and raised.value.reason == "tts_rate_limited"


def test_a_wrong_key_is_refused_by_the_fake(fake: OpenAISpeechFake) -> None:
    wrong = OpenAISpeechClient(fake.url, "sk-wrong", timeout=5)
    try:
        with pytest.raises(PermanentError) as raised:
            wrong.speak("tts-1", "alloy", "hello")
    finally:
        wrong.close()
    assert raised.value.reason == "tts_http_401"


def test_an_unreachable_endpoint_is_transient() -> None:
    nowhere = OpenAISpeechClient("http://127.0.0.1:9/v1", API_KEY, timeout=2)
    try:
        with pytest.raises(TransientError) as raised:
            nowhere.speak("tts-1", "alloy", "hello")
    finally:
        nowhere.close()
    assert raised.value.reason == "tts_transport"
