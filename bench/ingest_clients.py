"""The API with another Redis client running the ingest script, for the ack-path benchmark's client comparison.

`BENCH_INGEST_CLIENT` picks it; everything else is `api.app`'s (same endpoint, same script, same settings):
- `channel`: ours (`api/redis_channel.py`), as shipped;
- `redis-py`: redis.asyncio's registered script, one pooled connection per call (the API's fallback path);
- `redis-py-pipelined`: redis.asyncio, the calls of one event-loop pass sent as one non-transactional pipeline;
- `coredis`: coredis' registered script (its connection pool multiplexes concurrent commands);
- `glide`: valkey-glide's `invoke_script` (one multiplexed connection, Rust core).

    PORT=8001 BENCH_INGEST_CLIENT=coredis python -m bench.ingest_clients
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from redis.asyncio.connection import parse_url

from api.app import LooperaApp, build_fastapi, check_api_settings, ingest_channel
from api.ingest import Ingestor, ScriptRunner
from api.webhook import WebhookEndpoint
from shared import mailbox
from shared.config import get_settings
from shared.logging import configure_logging
from shared.redis_client import async_redis

CLIENTS = ("channel", "redis-py", "redis-py-pipelined", "coredis", "glide")


class PipelinedRedisPy:
    """Concurrent calls collected for one loop pass, then one redis.asyncio pipeline (one round trip)."""

    def __init__(self, url: str, script: str) -> None:
        self._client = async_redis(url)
        self._script = self._client.register_script(script)
        self._queued: list[tuple[list[bytes], list[bytes], asyncio.Future[Any]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, keys: list[bytes], args: list[bytes]) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if not self._queued:
            asyncio.get_running_loop().call_soon(self._flush)
        self._queued.append((keys, args, future))
        return await future

    def _flush(self) -> None:
        batch, self._queued = self._queued, []
        task = asyncio.create_task(self._send(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[tuple[list[bytes], list[bytes], asyncio.Future[Any]]]) -> None:
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for keys, args, _ in batch:
                    await self._script(keys=keys, args=args, client=pipe)
                replies = await pipe.execute(raise_on_error=False)
        except Exception as exc:
            replies = [exc] * len(batch)
        for (_, _, future), reply in zip(batch, replies, strict=True):
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def close(self) -> None:
        await self._client.aclose()


class Coredis:
    """coredis 6 clients live inside `async with`: a background task holds the context open."""

    def __init__(self, url: str, script: str) -> None:
        import coredis

        options = parse_url(url)
        self._client = coredis.Redis(host=options.get("host", "localhost"), port=int(options.get("port", 6379)))
        self._script = self._client.register_script(script)
        self._ready = asyncio.Event()
        self._done = asyncio.Event()
        self._holder: asyncio.Task[None] | None = None

    async def _hold(self) -> None:
        async with self._client:
            self._ready.set()
            await self._done.wait()

    async def run(self, keys: list[bytes], args: list[bytes]) -> Any:
        if self._holder is None:
            self._holder = asyncio.create_task(self._hold())
        await self._ready.wait()
        return await self._script(keys=keys, args=args)

    async def close(self) -> None:
        self._done.set()
        if self._holder is not None:
            await self._holder


class Glide:
    def __init__(self, url: str, script: str) -> None:
        from glide import Script

        options = parse_url(url)
        self._address = (options.get("host", "localhost"), int(options.get("port", 6379)))
        self._script = Script(script)
        self._client: Any = None
        self._connecting = asyncio.Lock()

    async def run(self, keys: list[bytes], args: list[bytes]) -> Any:
        if self._client is None:
            from glide import GlideClient, GlideClientConfiguration, NodeAddress

            async with self._connecting:
                if self._client is None:
                    config = GlideClientConfiguration([NodeAddress(*self._address)], request_timeout=2000)
                    self._client = await GlideClient.create(config)
        return await self._client.invoke_script(self._script, keys=keys, args=args)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()


def create_app() -> LooperaApp:
    """`api.app.create_app` with the ingest client of BENCH_INGEST_CLIENT."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    check_api_settings(settings)
    choice = os.environ.get("BENCH_INGEST_CLIENT", "channel")
    runners: dict[str, Any] = {
        "channel": lambda: ingest_channel(settings),
        "redis-py": lambda: None,
        "redis-py-pipelined": lambda: PipelinedRedisPy(settings.redis_url, mailbox.INGEST),
        "coredis": lambda: Coredis(settings.redis_url, mailbox.INGEST),
        "glide": lambda: Glide(settings.redis_url, mailbox.INGEST),
    }
    runner: ScriptRunner | None = runners[choice]()
    ingestor = Ingestor(
        async_redis(settings),
        settings.dedupe_ttl_seconds,
        settings.conversation_lease_seconds,
        runner,
        announce_to_flower=settings.announce_task_sent_events,
    )
    return LooperaApp(build_fastapi(settings, ingestor), WebhookEndpoint(settings, ingestor))


def main() -> None:
    import uvicorn

    from loopera.cli import uvicorn_options

    port = int(os.environ["PORT"])
    uvicorn.run("bench.ingest_clients:create_app", factory=True, host="127.0.0.1", port=port, **uvicorn_options())


if __name__ == "__main__":
    main()
