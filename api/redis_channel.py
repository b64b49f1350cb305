"""The webhook's ingest script on redis.asyncio, pipelined: the calls of one event-loop pass leave as one
non-transactional pipeline (one connection, one round trip), so under load one write carries many webhooks.

Chosen over our own RESP client on one multiplexed connection (still in bench/resp_channel.py) by the ack
benchmark: the same run measured 510 us of API CPU per acknowledged webhook here against 441 there (1.16x, within
the 25 % we accept for a well-kept library), coredis 6.9.0 at 1.94x and valkey-glide 2.5.3 at 1.74x
(`python -m bench.ack_path --variants-only`, docs/performance.md#ingest-client-ours-or-a-library). redis-py also
brings what the hand-written client had to re-implement: Sentinel (the client of `shared.redis_client` asks the
Sentinels on every reconnect and drops a demoted primary's connection on READONLY), NOSCRIPT handling, AUTH, TLS.

Acknowledged means replicated (`REDIS_ACK_REPLICAS` > 0): each pipeline ends with one `WAIT <replicas>
<REDIS_ACK_WAIT_MS>`, on the same connection as its scripts (WAIT covers the writes of its own connection and cannot
run inside a script: https://redis.io/docs/latest/commands/wait/). Its callers get their replies only once enough
replicas confirmed; fewer raise `NotReplicatedError` (the webhook's 503). Any other failure raises a redis-py error
(503 too; Meta redelivers). The ingest script is atomic and idempotent (SET NX dedupe), so redis-py's retry of a
pipeline after a dropped connection can at worst report as duplicates messages the first attempt had queued.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

Call = tuple[list[bytes], list[bytes], "asyncio.Future[Any]"]


class NotReplicatedError(RedisError):
    """The write reached the primary but fewer replicas than REDIS_ACK_REPLICAS confirmed it in time."""


def check_replicas(replicas: Any, required: int) -> None:
    """Judge a WAIT reply: the number of replicas that confirmed, or the error that replaced it. Raises
    NotReplicatedError when too few confirmed, ConnectionError when the connection died first."""
    if isinstance(replicas, RedisConnectionError):
        raise RedisConnectionError(f"connection lost before WAIT answered: {replicas}") from replicas
    if isinstance(replicas, Exception):
        raise NotReplicatedError(f"WAIT did not answer: {replicas}") from replicas
    if int(replicas) < required:
        raise NotReplicatedError(f"{replicas} of {required} replicas confirmed the write in time")


class ScriptChannel:
    """Runs one Lua script for concurrent callers, one pipeline per event-loop pass (EVALSHA; redis-py loads the
    script after a NOSCRIPT). `ack_replicas` > 0 ends every pipeline with one WAIT for that many replicas, up to
    `ack_wait_ms`: give `client` a socket timeout above that."""

    def __init__(self, client: aioredis.Redis, script: str, ack_replicas: int = 0, ack_wait_ms: int = 500) -> None:
        self._client = client
        self._script = client.register_script(script)
        self._ack_replicas, self._ack_wait_ms = ack_replicas, ack_wait_ms
        self._queued: list[Call] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def run(self, keys: list[bytes], args: list[bytes]) -> Any:
        """The script's reply once it is on the primary (and, with `ack_replicas`, on that many replicas).
        Raises redis.exceptions errors (ConnectionError, TimeoutError, ResponseError) or NotReplicatedError."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._queued:
            loop.call_soon(self._flush)
        self._queued.append((keys, args, future))
        return await future

    def _flush(self) -> None:
        batch, self._queued = self._queued, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._sending.add(task)  # keep a reference until done (asyncio holds tasks weakly)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[Call]) -> None:
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for keys, args, _ in batch:
                    await self._script(keys=keys, args=args, client=pipe)
                if self._ack_replicas:
                    pipe.execute_command("WAIT", self._ack_replicas, self._ack_wait_ms)
                replies = await pipe.execute(raise_on_error=False)
        except (RedisError, OSError) as exc:
            error = exc if isinstance(exc, RedisError) else RedisConnectionError(type(exc).__name__)
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        failure: RedisError | None = None
        if self._ack_replicas:
            try:
                check_replicas(replicas=replies[-1], required=self._ack_replicas)
            except RedisError as exc:
                failure = exc
        for (_, _, future), reply in zip(batch, replies, strict=False):
            if future.done():
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            elif failure is not None:
                future.set_exception(failure)
            else:
                future.set_result(reply)

    async def close(self) -> None:
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
