"""The webhook's pipelined ingest channel (api/redis_channel.py) against a real redis-server."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from api.ingest import DISPATCHED, DUPLICATE, QUEUED_BEHIND, Ingestor
from api.webhook_payload import PreparedJob
from shared import mailbox
from shared.redis_client import async_redis
from tests.fakes.server import free_port, wait_for
from tests.processes import RedisServer

pytestmark = pytest.mark.integration


# No worker consumes this queue (session-scoped workers of other tests may be running): the entries stay put.
QUEUE = "channel-test"


def _job(n: int, conversation: str) -> PreparedJob:
    return PreparedJob(f"wamid.{n}", conversation, f"task-{n}", QUEUE, b'{"envelope":%d}' % n, f"cid{n}")


def _ingest(url: str, *batches: list[PreparedJob]) -> list[list[int]]:
    """Each batch through its own concurrent webhook call, all over one channel."""

    async def main() -> list[list[int]]:
        ingestor = Ingestor(async_redis(url), 3600, 60)
        try:
            return list(await asyncio.gather(*(ingestor.ingest(b) for b in batches)))
        finally:
            await ingestor.close()

    return asyncio.run(main())


def test_dedupe_mailbox_and_dispatch_through_the_channel(redis_server: RedisServer, redis_client: redis.Redis) -> None:
    first = _ingest(redis_server.url, [_job(1, "c1"), _job(2, "c1"), _job(3, "c2")])
    again = _ingest(redis_server.url, [_job(1, "c1"), _job(4, "c2")])
    assert first == [[DISPATCHED, QUEUED_BEHIND, DISPATCHED]]
    assert again == [[DUPLICATE, QUEUED_BEHIND]]
    assert redis_client.llen(mailbox.inbox_key("c1")) == 2
    queued = redis_client.lrange(QUEUE, 0, -1)
    assert sorted(queued) == [b'{"envelope":1}', b'{"envelope":3}']


def test_many_concurrent_callers_each_get_their_own_reply(redis_server: RedisServer) -> None:
    batches = [[_job(n, f"conv-{n}")] for n in range(300)]
    batches += [[_job(n, f"conv-{n}")] for n in range(0, 300, 3)]  # every third one again: duplicates
    results = _ingest(redis_server.url, *batches)
    assert results[:300] == [[DISPATCHED]] * 300
    assert results[300:] == [[DUPLICATE]] * 100


def test_flushed_script_cache_falls_back_to_eval(redis_server: RedisServer, redis_client: redis.Redis) -> None:
    _ingest(redis_server.url, [_job(1, "c1")])
    redis_client.script_flush()
    assert _ingest(redis_server.url, [_job(2, "c2")]) == [[DISPATCHED]]


def test_selects_the_database_of_the_url(redis_server: RedisServer) -> None:
    url = redis_server.url.rsplit("/", 1)[0] + "/3"
    other = redis.Redis.from_url(url)
    other.flushdb()
    try:
        assert _ingest(url, [_job(1, "c1")]) == [[DISPATCHED]]
        assert other.llen(QUEUE) == 1
        assert redis.Redis.from_url(redis_server.url).llen(QUEUE) == 0
    finally:
        other.flushdb()
        other.close()


def test_redis_down_raises_and_the_channel_recovers_when_it_is_back(redis_server: RedisServer) -> None:
    if not redis_server.controllable:
        pytest.skip("needs a private redis-server to stop")
    url = redis_server.url

    async def scenario() -> tuple[list[int], Any, list[int]]:
        ingestor = Ingestor(async_redis(url), 3600, 60)
        before = await ingestor.ingest([_job(1, "c1")])
        redis_server.stop()
        try:
            await ingestor.ingest([_job(2, "c2")])
            failure: Any = None
        except RedisError as exc:
            failure = exc
        redis_server.start()
        after = await ingestor.ingest([_job(3, "c3")])
        await ingestor.close()
        return before, failure, after

    before, failure, after = asyncio.run(scenario())
    assert before == [DISPATCHED]
    assert isinstance(failure, RedisConnectionError)
    assert after == [DISPATCHED]


def test_authenticates_with_the_urls_password(tmp_path: Path) -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("needs redis-server to start one with a password")
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--requirepass", "s3cret"]
    process = subprocess.Popen([*argv, "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port, password="s3cret")
        wait_for(lambda: _pings(client), timeout=10, what="redis-server with a password")
        with pytest.raises(RedisError):
            _ingest(f"redis://127.0.0.1:{port}/0", [_job(1, "c1")])  # no password: refused, never a silent 200
        assert _ingest(f"redis://:s3cret@127.0.0.1:{port}/0", [_job(2, "c2")]) == [[DISPATCHED]]
        assert _ingest(f"redis://default:s3cret@127.0.0.1:{port}/0", [_job(3, "c3")]) == [[DISPATCHED]]
        assert client.llen(QUEUE) == 2
        client.close()
    finally:
        process.terminate()
        process.wait(timeout=10)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
