"""Every Groq call goes through the shared limiter: a denied budget means no HTTP request at all."""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import pytest

from tests.fakes.groq_fake import API_KEY, GroqFake, groq_error
from workers.clients.groq import GroqClient
from workers.clients.rate_limit import RateLimited


class DenyingLimiter:
    def __init__(self) -> None:
        self.asked: list[tuple[str, str, dict[str, float]]] = []
        self.cooldowns: list[tuple[str, float]] = []

    def kind_for_chat(self, model: str) -> str:
        return "chat"

    def acquire(self, kind: str, model: str, conversation: str = "", **costs: float) -> None:
        self.asked.append((kind, model, costs))
        raise RateLimited(model, "requests", 3.0)

    def cool_down(self, model: str, seconds: float) -> None:
        self.cooldowns.append((model, seconds))


class AdmittingLimiter(DenyingLimiter):
    def acquire(self, kind: str, model: str, conversation: str = "", **costs: float) -> None:
        self.asked.append((kind, model, costs))


@pytest.fixture(scope="module")
def fake() -> Iterator[GroqFake]:
    server = GroqFake()
    server.server.start()
    yield server
    server.server.stop()


def test_every_public_call_reserves_budget_first() -> None:
    """A guard for new methods (vision, translation, ...): each one that calls Groq must take from the budget."""
    public = [name for name, _ in inspect.getmembers(GroqClient, inspect.isfunction) if not name.startswith("_")]
    for name in public:
        if name == "close":
            continue
        assert "self._reserve(" in inspect.getsource(getattr(GroqClient, name)), f"GroqClient.{name} skips the limiter"


def test_over_budget_calls_never_reach_groq(fake: GroqFake) -> None:
    fake.reset()
    limiter = DenyingLimiter()
    client = GroqClient(API_KEY, fake.url, 5, limiter=limiter)  # type: ignore[arg-type]
    with pytest.raises(RateLimited):
        client.chat("openai/gpt-oss-120b", [{"role": "user", "content": "hi " * 70}], 1024)
    with pytest.raises(RateLimited):
        client.transcribe("whisper-large-v3-turbo", b"x" * 100_000)
    with pytest.raises(RateLimited):
        client.speak("canopylabs/orpheus-v1-english", "autumn", "Hello there")
    client.close()
    assert fake.calls == []
    kinds = [(kind, sorted(costs)) for kind, _, costs in limiter.asked]
    assert kinds == [("chat", ["tokens"]), ("transcription", ["audio_seconds"]), ("speech", ["tokens"])]
    assert limiter.asked[1][2]["audio_seconds"] == 50.0  # 100 kB at the conservative 16 kbit/s estimate


def test_a_429_sets_the_shared_cooldown_and_becomes_a_deferral(fake: GroqFake) -> None:
    fake.reset()
    fake.faults.add("chat", groq_error(429, "rate_limit_exceeded", "slow down", "tokens", **{"retry-after": "7"}))
    limiter = AdmittingLimiter()
    client = GroqClient(API_KEY, fake.url, 5, limiter=limiter)  # type: ignore[arg-type]
    with pytest.raises(RateLimited) as deferred:
        client.chat("openai/gpt-oss-120b", [{"role": "user", "content": "hi"}], 64)
    client.close()
    assert deferred.value.retry_after == 7.0 and deferred.value.reason == "groq_rate_limited"
    assert limiter.cooldowns == [("openai/gpt-oss-120b", 7.0)]
