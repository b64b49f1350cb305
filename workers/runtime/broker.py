"""The Redis broker transports (one Redis, or Sentinel), with one fix so a worker survives a Redis restart or a
failover while it runs a job.

kombu 5.7.0 bug: when the broker connection drops while a late-ack job is unacknowledged, Celery first
`collect()`s the connection (which drops `transport.client`) and then closes it; closing the channel tries to
restore the unacked message, builds a new connection pool from the dropped client and raises AttributeError.
That escapes Celery's `ignore_errors` and ends the worker ("Unrecoverable error"). Raising a connection error
instead lets Celery carry on reconnecting. The unacked message stays in Redis' unacked hash (restored after the
visibility timeout), and our mailbox reaper hands the job out again when its lease runs out.

With Sentinel, kombu's `SentinelChannel` builds each connection pool from `SENTINEL` replies (redis-py's
`SentinelConnectionPool`), so a reconnect after a failover reaches the new primary; the same fix applies to it.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError


class _ClosedConnectionGuard:
    connection: Any

    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection.client is None:
            raise RedisConnectionError("broker connection already closed")
        return super()._connparams(asynchronous=asynchronous)  # type: ignore[misc]


class Channel(_ClosedConnectionGuard, kombu_redis.Channel):
    pass


class Transport(kombu_redis.Transport):
    Channel = Channel


class SentinelChannel(_ClosedConnectionGuard, kombu_redis.SentinelChannel):
    pass


class SentinelTransport(kombu_redis.SentinelTransport):
    Channel = SentinelChannel
