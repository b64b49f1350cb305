"""Where the ingest channel connects: REDIS_URL's server, or the primary the Sentinels name right now.

The Sentinel case asks redis-py's asyncio Sentinel client (`discover_master`: `SENTINEL MASTERS` on each Sentinel in
turn, skipping one that sees the primary as down), so a failover needs nothing from us but a reconnect. It runs only
when the channel (re)connects, never per webhook.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio.sentinel as aiosentinel
from redis.asyncio.connection import parse_url

from shared.config import Settings
from shared.redis_client import sentinel_options


@dataclass(frozen=True)
class Address:
    host: str = "localhost"
    port: int = 6379
    path: str | None = None  # a unix socket instead of host and port


class PrimaryLocator:
    """`address()` is the fixed server of REDIS_URL, or the Sentinels' current primary (raises
    `redis.sentinel.MasterNotFoundError`, a redis ConnectionError, when none is known, e.g. mid-failover)."""

    def __init__(self, url: str, settings: Settings | None = None) -> None:
        options = parse_url(url)
        self._fixed = Address(options.get("host", "localhost"), int(options.get("port", 6379)), options.get("path"))
        self._sentinel: aiosentinel.Sentinel | None = None
        self._master = ""
        if settings is not None and settings.sentinel_addresses:
            sentinels, sentinel_kwargs = settings.sentinel_addresses, sentinel_options(settings)
            self._sentinel = aiosentinel.Sentinel(sentinels, sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call]
            self._master = settings.redis_sentinel_master

    @property
    def follows_sentinel(self) -> bool:
        return self._sentinel is not None

    async def address(self) -> Address:
        if self._sentinel is None:
            return self._fixed
        host, port = await self._sentinel.discover_master(self._master)
        return Address(str(host), int(port))

    async def close(self) -> None:
        if self._sentinel is not None:
            await self._sentinel.aclose()
