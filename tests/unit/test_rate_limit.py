"""The shared Groq limiter against a real redis-server (the Lua script is the thing under test)."""

from __future__ import annotations

import shutil
import threading
import time
from typing import Any

import pytest
import redis

from shared.config import Settings
from tests.processes import RedisServer
from workers.clients.rate_limit import RateLimited, RateLimiter

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")


def limiter(client: redis.Redis, **overrides: Any) -> RateLimiter:
    values: dict[str, Any] = {"rate_limit_window_seconds": 1.0, "chat_rpm": 3, "chat_tpm": 1000} | overrides
    return RateLimiter(client, Settings(_env_file=None, **values), api_key="k")  # type: ignore[call-arg]


def test_admits_the_limit_then_defers_until_the_oldest_call_leaves_the_window(client: redis.Redis) -> None:
    lim = limiter(client)
    for _ in range(3):
        lim.acquire("chat", "m", tokens=10)
    with pytest.raises(RateLimited) as denied:
        lim.acquire("chat", "m", tokens=10)
    assert denied.value.dimension == "requests"
    wait = denied.value.retry_after
    assert wait is not None and 0 < wait <= 1.0
    assert denied.value.reason == "groq_rate_budget"
    time.sleep(wait + 0.02)
    lim.acquire("chat", "m", tokens=10)


def test_a_denied_call_takes_nothing_from_the_budget(client: redis.Redis) -> None:
    lim = limiter(client, chat_rpm=100, chat_tpm=100)
    lim.acquire("chat", "m", tokens=60)
    with pytest.raises(RateLimited) as denied:
        lim.acquire("chat", "m", tokens=60)
    assert denied.value.dimension == "tokens"
    # Neither the request nor its tokens were recorded: 40 tokens are still there.
    assert client.zcard(lim.key("m", "requests")) == 1
    lim.acquire("chat", "m", tokens=40)


def test_models_and_kinds_have_separate_budgets(client: redis.Redis) -> None:
    lim = limiter(client, chat_rpm=1, stt_rpm=1)
    lim.acquire("chat", "model-a")
    lim.acquire("chat", "model-b")
    lim.acquire("transcription", "whisper", audio_seconds=10)
    with pytest.raises(RateLimited):
        lim.acquire("chat", "model-a")


def test_settle_replaces_the_estimate_with_the_real_cost(client: redis.Redis) -> None:
    lim = limiter(client, chat_rpm=100, chat_tpm=100)
    reservation = lim.acquire("chat", "m", tokens=90)
    with pytest.raises(RateLimited):
        lim.acquire("chat", "m", tokens=20)
    lim.settle(reservation, "tokens", 30)
    lim.acquire("chat", "m", tokens=70)


def test_a_429_cooldown_holds_every_caller_and_is_never_shortened(client: redis.Redis) -> None:
    lim = limiter(client, chat_rpm=100)
    lim.cool_down("m", 2.0)
    lim.cool_down("m", 0.5)  # a later, shorter retry-after must not cut the first one short
    with pytest.raises(RateLimited) as denied:
        lim.acquire("chat", "m")
    assert denied.value.dimension == "cooldown"
    assert (denied.value.retry_after or 0) > 1.5
    lim.acquire("chat", "other-model")


def test_disabled_limits_and_zero_dimensions_admit_everything(client: redis.Redis) -> None:
    off = limiter(client, rate_limits_enabled=False, chat_rpm=1)
    for _ in range(5):
        off.acquire("chat", "m", tokens=10_000)
    zero = limiter(client, chat_rpm=0, chat_tpm=0)
    for _ in range(5):
        zero.acquire("chat", "z", tokens=10_000)


def test_a_call_bigger_than_the_budget_passes_alone(client: redis.Redis) -> None:
    lim = limiter(client, chat_rpm=100, chat_tpm=50)
    lim.acquire("chat", "m", tokens=500)  # Groq answers it with 413; waiting forever would not help
    with pytest.raises(RateLimited):
        lim.acquire("chat", "m", tokens=1)


def test_concurrent_callers_never_exceed_the_limit_in_any_window(client: redis.Redis, server: RedisServer) -> None:
    window, limit = 0.5, 4
    admitted: list[tuple[float, float]] = []  # (before the call, after it): the admission happened in between
    lock = threading.Lock()
    stop = time.monotonic() + 1.6

    def hammer() -> None:
        own = redis.Redis.from_url(server.url)
        lim = limiter(own, rate_limit_window_seconds=window, chat_rpm=limit, chat_tpm=0)
        while time.monotonic() < stop:
            before = time.monotonic()
            try:
                lim.acquire("chat", "m")
            except RateLimited as exc:
                time.sleep(min(exc.retry_after or 0.0, 0.05))
                continue
            with lock:
                admitted.append((before, time.monotonic()))
        own.close()

    threads = [threading.Thread(target=hammer) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) >= 2 * limit, admitted  # it kept admitting as windows passed
    # Count, for each admission, the calls that were certainly admitted inside the window that starts with it
    # (started after it returned, returned before the window ended): scheduling noise can only hide a violation,
    # never invent one.
    for before, after in admitted:
        inside = sum(1 for b, e in admitted if b >= after and e < before + window)
        assert 1 + inside <= limit, (before, after, sorted(admitted))


# --- fair sharing between conversations -------------------------------------------------------------------------


def fill_then_wait(lim: RateLimiter, window: float) -> float:
    """Flooder A takes both calls of a 2-per-window budget, 0.2 s apart; B asks and is refused (B now waits).
    Returns when A's first call leaves the window (A still has one call in it)."""
    lim.acquire("chat", "m", "flooder-a")
    time.sleep(0.2)
    lim.acquire("chat", "m", "flooder-a")
    with pytest.raises(RateLimited) as refused:
        lim.acquire("chat", "m", "patient-b")
    assert not refused.value.fair  # the budget itself was full
    wait = refused.value.retry_after or 0.0
    assert 0 < wait <= window
    time.sleep(wait + 0.02)
    return wait


def test_while_another_conversation_waits_the_flooder_gets_no_more_than_its_share(client: redis.Redis) -> None:
    lim = limiter(client, chat_rpm=2, rate_limit_window_seconds=1.5)
    fill_then_wait(lim, 1.5)
    # A slot is free, but A already has one call in the window and B waits: A's share is 2 / 2 = 1.
    with pytest.raises(RateLimited) as refused:
        lim.acquire("chat", "m", "flooder-a")
    assert refused.value.fair
    lim.acquire("chat", "m", "patient-b")  # the freed slot went to the one who waited
    # Nobody waits any more: A competes for the plain budget again (full now).
    with pytest.raises(RateLimited) as again:
        lim.acquire("chat", "m", "flooder-a")
    assert not again.value.fair


def test_without_fair_sharing_the_flooder_takes_the_freed_slot(client: redis.Redis) -> None:
    lim = limiter(client, chat_rpm=2, rate_limit_window_seconds=1.5, groq_fair_share=False)
    fill_then_wait(lim, 1.5)
    lim.acquire("chat", "m", "flooder-a")
    with pytest.raises(RateLimited):
        lim.acquire("chat", "m", "patient-b")


def test_a_conversation_with_nothing_in_the_window_is_within_its_share(client: redis.Redis) -> None:
    lim = limiter(client, chat_rpm=10, chat_tpm=1000)
    lim.acquire("chat", "m", "a", tokens=900)
    with pytest.raises(RateLimited):
        lim.acquire("chat", "m", "b", tokens=200)  # over the token budget: b waits
    # c's call is bigger than a share (1000 / 3) but c has nothing in the window, and the budget has room.
    lim.acquire("chat", "m", "c", tokens=90)
    # a has had far more than its share while b waits.
    with pytest.raises(RateLimited) as refused:
        lim.acquire("chat", "m", "a", tokens=5)
    assert refused.value.fair


def test_calls_for_no_conversation_never_wait_for_a_share(client: redis.Redis) -> None:
    lim = limiter(client, chat_rpm=3, rate_limit_window_seconds=5.0)
    lim.acquire("chat", "m", "a")
    lim.acquire("chat", "m")
    lim.acquire("chat", "m")
    with pytest.raises(RateLimited):
        lim.acquire("chat", "m", "b")
    keys = [k.decode() for k in client.keys("lp:rl:*")]
    assert not any("flooder" in k or k.endswith(":a") for k in keys)  # conversations appear only hashed
    assert client.zrange(lim.waiting_key("m"), 0, -1) == [RateLimiter.party("b").encode()]
