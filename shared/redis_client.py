"""Redis client factories with the timeouts and keep-alives a broker connection needs.

Without socket timeouts a half-open connection (Redis restarted, NAT dropped) hangs a request forever; without
health checks and retries the process does not recover when Redis comes back.
"""

from __future__ import annotations

import redis
import redis.asyncio as aioredis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

_TIMEOUT = 2.0


def sync_redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_timeout=_TIMEOUT,
        socket_connect_timeout=_TIMEOUT,
        socket_keepalive=True,
        health_check_interval=15,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )


def async_redis(url: str) -> aioredis.Redis:
    # The webhook must answer quickly: one quick retry covers a restarted Redis, then the caller answers 503 and
    # Meta redelivers.
    return aioredis.Redis.from_url(
        url,
        socket_timeout=_TIMEOUT,
        socket_connect_timeout=_TIMEOUT,
        socket_keepalive=True,
        health_check_interval=15,
        retry=aioredis.retry.Retry(ExponentialBackoff(cap=0.2, base=0.02), retries=1),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        max_connections=256,
    )
