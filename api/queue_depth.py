"""Queue depth in the API's /metrics: visible even when a pool has zero workers (Flower's is not, mher/flower#1173).

A scrape must not wait on Redis (and prometheus_client collectors are synchronous while our client is
redis.asyncio), so a background task refreshes a cached snapshot every QUEUE_DEPTH_REFRESH_SECONDS and a custom
collector serves it. The snapshot's age is exported too, so a stale value is visible rather than silently wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from prometheus_client.core import REGISTRY, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from shared import mailbox
from shared.jobs import Queue
from shared.logging import get_logger

log = get_logger("api.queue_depth")


@dataclass
class Snapshot:
    # LLEN of each Celery queue list: jobs dispatched and not yet picked up (unacked ones are not counted).
    queues: dict[str, int] = field(default_factory=dict)
    # Conversations with a job in flight or waiting (their mailbox is in the lease set).
    conversations: int = 0
    # Messages waiting in conversation mailboxes behind their conversation's current job (not yet in Celery).
    backlog: int = 0
    taken_at: float = 0.0


class QueueDepthCollector(Collector):
    def __init__(self) -> None:
        self.snapshot = Snapshot()

    def collect(self) -> Iterable[Metric]:
        snap = self.snapshot
        if not snap.taken_at:
            return  # nothing measured yet: exporting zeros would look like an empty queue
        depth = GaugeMetricFamily("loopera_queue_depth", "Jobs waiting in each Celery queue (LLEN)", labels=["queue"])
        for name, value in snap.queues.items():
            depth.add_metric([name], value)
        yield depth
        yield GaugeMetricFamily(
            "loopera_conversations_active",
            "Conversations with a job running or waiting in their mailbox",
            value=snap.conversations,
        )
        yield GaugeMetricFamily(
            "loopera_mailbox_backlog",
            "Messages waiting behind their conversation's current job (not yet handed to Celery)",
            value=snap.backlog,
        )
        yield GaugeMetricFamily(
            "loopera_queue_depth_age_seconds", "Age of the queue depth snapshot", value=time.time() - snap.taken_at
        )


_COLLECTOR: QueueDepthCollector | None = None


def collector() -> QueueDepthCollector:
    """One collector per process, registered once (create_app may run more than once, e.g. in tests)."""
    global _COLLECTOR  # noqa: PLW0603 - a process-wide registry entry
    if _COLLECTOR is None:
        _COLLECTOR = QueueDepthCollector()
        REGISTRY.register(_COLLECTOR)
    return _COLLECTOR


# Sum of (mailbox length - 1) over the conversations in the lease set, in one server-side call. Bounded to the
# first MAX_SCANNED conversations so a huge backlog cannot make the refresh expensive.
_BACKLOG = """
local total = 0
for _, inbox in ipairs(redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)) do
  local n = redis.call('LLEN', inbox)
  if n > 1 then total = total + n - 1 end
end
return total
"""
MAX_SCANNED = 10000


async def measure(client: aioredis.Redis) -> Snapshot:
    async with client.pipeline(transaction=False) as pipe:
        for queue in Queue:
            pipe.llen(queue.value)
        pipe.zcard(mailbox.LEASES_KEY)
        results = await pipe.execute()
    # Read-only script: EVAL (not a cached script object) keeps this module stateless; it is tiny.
    backlog = await client.eval(_BACKLOG, 1, mailbox.LEASES_KEY, str(MAX_SCANNED))
    names = [queue.value for queue in Queue]
    queues = dict(zip(names, map(int, results[:-1]), strict=True))
    return Snapshot(queues, int(results[-1]), int(backlog), time.time())


async def refresh_forever(client: aioredis.Redis, target: QueueDepthCollector, interval: float) -> None:
    while True:
        try:
            target.snapshot = await measure(client)
        except (RedisError, OSError) as exc:
            # Keep the last snapshot; its age metric grows, which is the signal.
            log.warning("queue_depth.refresh_failed", error=type(exc).__name__)
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def running_refresher(client: aioredis.Redis, interval: float) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(refresh_forever(client, collector(), interval), name="loopera-queue-depth")
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
