"""Unit-level fixtures: a private redis-server per test module, for code whose behaviour is its Lua and its keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.processes import RedisServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server on a free port, for this module only (modules that use it skip without the binary)."""
    srv = RedisServer(Path(tmp_path_factory.mktemp("redis-unit")))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def client(server: RedisServer) -> Iterator[redis.Redis]:
    """A client of `server`, on an empty database."""
    store = redis.Redis.from_url(server.url)
    store.flushdb()
    yield store
    store.close()
