"""The API with another Redis client running the ingest script, for the ack-path benchmark's client comparison.

`BENCH_INGEST_CLIENT` picks it; everything else is `api.app`'s (same endpoint, same script, same settings):
- `channel`: the API's own (`api/redis_channel.py`): redis.asyncio, one pipeline per event-loop pass;
- `resp`: a hand-written RESP client on one multiplexed connection, hiredis parsing (`bench/resp_channel.py`);
- `redis-py`: redis.asyncio's registered script, one pooled connection per call;
- `coredis`: coredis' registered script (its connection pool multiplexes concurrent commands);
- `glide`: valkey-glide's `invoke_script` (one multiplexed connection, Rust core).

    PORT=8001 BENCH_INGEST_CLIENT=coredis python -m bench.ingest_clients
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from redis.asyncio.connection import parse_url

from api.app import LooperaApp, build_fastapi, check_api_settings
from api.ingest import Ingestor, ScriptRunner
from api.webhook import WebhookEndpoint
from bench import resp_channel
from shared import mailbox
from shared.config import get_settings
from shared.logging import configure_logging
from shared.redis_client import async_redis

CLIENTS = ("channel", "resp", "redis-py", "coredis", "glide")


class PerCall:
    """redis.asyncio's registered script, awaited per call: one pooled connection per webhook."""

    def __init__(self, url: str, script: str) -> None:
        self._client = async_redis(url)
        self._script = self._client.register_script(script)

    async def run(self, keys: list[bytes], args: list[bytes]) -> Any:
        return await self._script(keys=keys, args=args)

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
        "channel": lambda: None,  # the Ingestor's default: api/redis_channel.py
        "resp": lambda: resp_channel.ScriptChannel(settings.redis_url, mailbox.INGEST),
        "redis-py": lambda: PerCall(settings.redis_url, mailbox.INGEST),
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
