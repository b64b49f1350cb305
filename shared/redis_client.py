"""Redis client factories with the timeouts and keep-alives a broker connection needs, for one Redis or Sentinel.

Without socket timeouts a half-open connection (Redis restarted, NAT dropped) hangs a request forever; without
health checks and retries the process does not recover when Redis comes back.

With `REDIS_SENTINELS` set, the clients come from redis-py's Sentinel support
(https://redis.readthedocs.io/en/stable/connections.html#sentinel-client): every new connection asks the Sentinels
for the current primary, a reply that shows the primary down (`SENTINEL MASTERS` flags) is not trusted, and a
connection to a former primary that was demoted to a replica (a `READONLY` error) is dropped and re-resolved.
`REDIS_URL` then supplies only the database number and the data nodes' credentials.
"""

from __future__ import annotations

from typing import Any, cast

import redis
import redis.asyncio as aioredis
import redis.asyncio.sentinel as aiosentinel
import redis.sentinel
from redis.asyncio.connection import parse_url
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from shared.config import ConfigError, Settings

_TIMEOUT = 2.0
# A worker's call rides through a Sentinel failover instead of failing its job: 0.1 + 0.2 + 0.4 + 0.8 + 6 x 1 s of
# back-off, about 7.5 s, covers a promotion with `down-after-milliseconds` up to about 5 s (docs/deployment.md).
_FAILOVER_RETRIES, _FAILOVER_BACKOFF_CAP = 10, 1.0
_RETRY_ON = [RedisConnectionError, RedisTimeoutError]


def _url_and_settings(target: Settings | str) -> tuple[str, Settings | None]:
    return (target, None) if isinstance(target, str) else (target.redis_url, target)


def data_node_options(url: str) -> dict[str, Any]:
    """The parts of REDIS_URL that still apply behind Sentinel: db, username, password. Raises ConfigError for a
    unix socket or TLS URL."""
    options: dict[str, Any] = dict(parse_url(url))
    cls = options.pop("connection_class", None)
    if cls is not None:
        # A Sentinel announces plain TCP addresses; TLS behind Sentinel would also need Celery's broker_use_ssl,
        # which this project does not set up (docs/deployment.md).
        raise ConfigError("With REDIS_SENTINELS, REDIS_URL must be redis://[user:password@]any-host/db")
    options.pop("host", None)
    options.pop("port", None)
    return options


def sentinel_options(settings: Settings) -> dict[str, Any]:
    """Connection options for the Sentinels themselves (they have their own password, if any)."""
    options: dict[str, Any] = {"socket_timeout": _TIMEOUT, "socket_connect_timeout": _TIMEOUT}
    password = settings.redis_sentinel_password.get_secret_value()
    if password:
        options["password"] = password
    return options


def sync_redis(target: Settings | str) -> redis.Redis:
    """A client for the primary: REDIS_URL's server, or the one the Sentinels name (followed across failovers)."""
    url, settings = _url_and_settings(target)
    common: dict[str, Any] = {
        "socket_timeout": _TIMEOUT,
        "socket_connect_timeout": _TIMEOUT,
        "socket_keepalive": True,
        "health_check_interval": 15,
        "retry_on_error": _RETRY_ON,
    }
    if settings is None or not settings.sentinel_addresses:
        return redis.Redis.from_url(url, retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2), **common)
    sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
        settings.sentinel_addresses, sentinel_kwargs=sentinel_options(settings), **data_node_options(url)
    )
    retry = Retry(ExponentialBackoff(cap=_FAILOVER_BACKOFF_CAP, base=0.05), retries=_FAILOVER_RETRIES)
    client = sentinel.master_for(  # type: ignore[no-untyped-call]
        settings.redis_sentinel_master, redis_class=redis.Redis, retry=retry, **common
    )
    return cast(redis.Redis, client)


def async_redis(target: Settings | str, socket_timeout: float = _TIMEOUT) -> aioredis.Redis:
    """The API's redis-py client (the ingest script, readiness, Flower events, queue depth). The webhook must answer
    quickly: one quick retry covers a restarted or failed-over Redis, then the caller answers 503 and Meta
    redelivers. `socket_timeout` (seconds) must exceed any blocking command's own wait (the ingest's WAIT)."""
    url, settings = _url_and_settings(target)
    common: dict[str, Any] = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": _TIMEOUT,
        "socket_keepalive": True,
        "health_check_interval": 15,
        "retry": aioredis.retry.Retry(ExponentialBackoff(cap=0.2, base=0.02), retries=1),
        "retry_on_error": _RETRY_ON,
        "max_connections": 256,
    }
    if settings is None or not settings.sentinel_addresses:
        return aioredis.Redis.from_url(url, **common)
    sentinel = aiosentinel.Sentinel(  # type: ignore[no-untyped-call]
        settings.sentinel_addresses, sentinel_kwargs=sentinel_options(settings), **data_node_options(url)
    )
    return cast(
        aioredis.Redis, sentinel.master_for(settings.redis_sentinel_master, redis_class=aioredis.Redis, **common)
    )
