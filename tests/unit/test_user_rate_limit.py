"""The per-user message limit against a real redis-server (the Lua script is the thing under test)."""

from __future__ import annotations

import shutil
import time

import pytest
import redis

from shared.config import Settings
from workers.clients.user_rate_limit import UserAdmission, UserRateLimit

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")


def limit(client: redis.Redis, per_window: int = 3, window: float = 60.0) -> UserRateLimit:
    settings = Settings(_env_file=None, user_messages_per_window=per_window, user_rate_window_seconds=window)  # type: ignore[call-arg]
    return UserRateLimit(client, settings)


def test_the_limit_then_one_notice_then_quiet(client: redis.Redis) -> None:
    lim = limit(client)
    decisions = [lim.admit("15550001", f"wamid.{i}") for i in range(6)]
    assert decisions == [UserAdmission.ANSWER] * 3 + [UserAdmission.SLOW_DOWN, UserAdmission.QUIET, UserAdmission.QUIET]
    # Another user has their own window.
    assert lim.admit("15550002", "wamid.x") is UserAdmission.ANSWER


def test_a_redelivered_message_gets_the_same_decision(client: redis.Redis) -> None:
    lim = limit(client, per_window=1)
    assert lim.admit("u", "wamid.a") is UserAdmission.ANSWER
    assert lim.admit("u", "wamid.b") is UserAdmission.SLOW_DOWN
    assert lim.admit("u", "wamid.a") is UserAdmission.ANSWER  # not counted twice
    assert lim.admit("u", "wamid.b") is UserAdmission.SLOW_DOWN  # its notice may not have gone out yet
    assert lim.admit("u", "wamid.c") is UserAdmission.QUIET


def test_the_window_rolls(client: redis.Redis) -> None:
    lim = limit(client, per_window=1, window=0.5)
    assert lim.admit("u", "wamid.1") is UserAdmission.ANSWER
    assert lim.admit("u", "wamid.2") is UserAdmission.SLOW_DOWN
    time.sleep(0.6)
    assert lim.admit("u", "wamid.3") is UserAdmission.ANSWER
    assert lim.admit("u", "wamid.4") is UserAdmission.SLOW_DOWN  # a new window, a new notice


def test_zero_switches_it_off_and_keys_hold_no_phone_numbers(client: redis.Redis) -> None:
    assert limit(client, per_window=0).admit("15550001", "wamid.1") is UserAdmission.ANSWER
    lim = limit(client, per_window=1)
    lim.admit("15550001", "wamid.1")
    lim.admit("15550001", "wamid.2")
    keys = [k.decode() for k in client.keys("*")]
    assert keys and not any("15550001" in k or "wamid" in k for k in keys)
    assert not any(b"15550001" in (client.get(k) or b"") for k in keys if client.type(k) == b"string")
