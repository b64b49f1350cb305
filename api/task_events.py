"""Announce dispatched jobs to Flower (api/celery_events.py), off the webhook's critical path."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from api import celery_events
from api.webhook_payload import PreparedJob
from shared.jobs import TASK_FOR_QUEUE, Queue
from shared.logging import get_logger
from shared.redis_scripts import ScriptResult

log = get_logger("api.task_events")

# Events are collected for this long and published in one pipeline: one PUBLISH round trip per webhook cost about a
# third of the ack path's throughput (measured with bench/ack_path.py); batching makes it negligible.
FLUSH_INTERVAL_SECONDS = 0.05


class TaskSentAnnouncer:
    def __init__(self, client: aioredis.Redis, flush_interval: float = FLUSH_INTERVAL_SECONDS) -> None:
        self._redis = client
        self._topic = celery_events.topic(int(client.connection_pool.connection_kwargs.get("db", 0)))
        self._interval = flush_interval
        self._queued: list[PreparedJob] = []
        self._pending: set[asyncio.Task[None]] = set()

    def announce(self, jobs: Sequence[PreparedJob], results: Sequence[int]) -> None:
        """Fire and forget: Meta's 200 does not wait for a monitoring event. Jobs queued behind another message of
        their conversation are announced by nobody until a worker hands them to Celery (they show on pickup)."""
        first = not self._queued
        self._queued.extend(job for job, result in zip(jobs, results, strict=True) if result == ScriptResult.DISPATCHED)
        if first and self._queued:
            asyncio.get_running_loop().call_later(self._interval, self._flush)

    def _flush(self) -> None:
        jobs, self._queued = self._queued, []
        task = asyncio.create_task(self._publish(jobs))
        self._pending.add(task)  # keep a reference until done (asyncio holds tasks weakly)
        task.add_done_callback(self._pending.discard)

    async def _publish(self, jobs: list[PreparedJob]) -> None:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for job in jobs:
                    name = TASK_FOR_QUEUE[Queue(job.queue)].value
                    argsrepr = f"<{job.queue} {job.correlation_id}>"
                    pipe.publish(self._topic, celery_events.task_sent(job.task_id, name, job.queue, argsrepr))
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.debug("task_events.publish_failed", error=type(exc).__name__)
