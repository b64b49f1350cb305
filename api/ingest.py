"""Durable hand-off of a webhook's messages to Redis: dedupe + mailbox + Celery queue in one atomic script."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

import redis.asyncio as aioredis

from api.redis_channel import check_replicas
from api.task_events import TaskSentAnnouncer
from api.webhook_payload import PreparedJob
from shared import mailbox

DUPLICATE, QUEUED_BEHIND, DISPATCHED = 0, 1, 2

_LEASES = mailbox.LEASES_KEY.encode()


class ScriptRunner(Protocol):
    """What runs the ingest script: `api.redis_channel.ScriptChannel` (bench/ingest_clients.py measures others)."""

    async def run(self, keys: list[bytes], args: list[bytes]) -> Any: ...

    async def close(self) -> None: ...


class Ingestor:
    """`channel` (the multiplexed connection of `api.redis_channel`) runs the script when given; without it (a
    Redis URL with TLS or other options) redis-py does. `ack_replicas` > 0: the redis-py path also waits (WAIT) for
    that many replicas; the channel does so itself."""

    def __init__(
        self,
        client: aioredis.Redis,
        dedupe_ttl_seconds: int,
        lease_seconds: int,
        channel: ScriptRunner | None = None,
        announce_to_flower: bool = False,
        ack_replicas: int = 0,
        ack_wait_ms: int = 500,
    ) -> None:
        self._redis = client
        self._channel = channel
        self._ack_replicas, self._ack_wait_ms = ack_replicas, ack_wait_ms
        self._announcer = TaskSentAnnouncer(client) if announce_to_flower else None
        self._script = client.register_script(mailbox.INGEST)
        self._ttl = str(dedupe_ttl_seconds).encode()
        self._lease_ms = str(lease_seconds * 1000).encode()

    async def ingest(self, jobs: Sequence[PreparedJob]) -> list[int]:
        """One round trip for the whole batch. The script is atomic, so either a message's dedupe marker and its
        job both exist or neither does: a failed enqueue can never make Meta's redelivery look like a duplicate.
        Raises redis errors; the caller answers 503 and Meta redelivers."""
        if not jobs:
            return []
        keys: list[bytes] = [_LEASES]
        args: list[bytes] = [b"%d" % int(time.time() * 1000), self._lease_ms, self._ttl]
        for job in jobs:
            keys += (mailbox.seen_key(job.message_id).encode(), mailbox.inbox_key(job.conversation).encode())
            args += (job.task_id.encode(), job.queue.encode(), job.envelope)
        result: list[int]
        if self._channel is not None:
            result = await self._channel.run(keys, args)
        else:
            result = await self._run_with_redis_py(keys, args)
        if self._announcer is not None:
            self._announcer.announce(jobs, result)
        return result

    async def _run_with_redis_py(self, keys: list[bytes], args: list[bytes]) -> list[int]:
        if not self._ack_replicas:
            return list(await self._script(keys=keys, args=args))
        # WAIT covers the writes of its own connection only, and a pipeline keeps one connection.
        async with self._redis.pipeline(transaction=False) as pipe:
            await self._script(keys=keys, args=args, client=pipe)
            pipe.execute_command("WAIT", self._ack_replicas, self._ack_wait_ms)
            result, replicas = await pipe.execute()
        check_replicas(replicas, self._ack_replicas)
        return list(result)

    async def ping(self) -> bool:
        return bool(await self._redis.ping())

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
        await self._redis.aclose()
