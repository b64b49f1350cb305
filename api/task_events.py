"""Announce dispatched jobs to Flower (shared/celery_events.py), off the webhook's critical path."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from api.webhook_payload import PreparedJob
from shared import celery_events
from shared.jobs import TASK_FOR_QUEUE, Queue
from shared.logging import correlation_id, get_logger

log = get_logger("api.task_events")

DISPATCHED = 2  # the ingest script's result for a job pushed to its Celery queue right now


class TaskSentAnnouncer:
    def __init__(self, client: aioredis.Redis) -> None:
        self._redis = client
        self._topic = celery_events.topic(int(client.connection_pool.connection_kwargs.get("db", 0)))
        self._pending: set[asyncio.Task[None]] = set()

    def announce(self, jobs: Sequence[PreparedJob], results: Sequence[int]) -> None:
        """Fire and forget: Meta's 200 does not wait for a monitoring event. Jobs queued behind another message of
        their conversation are announced by nobody until a worker hands them to Celery (they show on pickup)."""
        dispatched = [job for job, result in zip(jobs, results, strict=True) if result == DISPATCHED]
        if dispatched:
            task = asyncio.create_task(self._publish(dispatched))
            self._pending.add(task)  # keep a reference until done (asyncio holds tasks weakly)
            task.add_done_callback(self._pending.discard)

    async def _publish(self, jobs: list[PreparedJob]) -> None:
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for job in jobs:
                    name = TASK_FOR_QUEUE[Queue(job.queue)].value
                    argsrepr = f"<{job.queue} {correlation_id(job.message_id)}>"
                    pipe.publish(self._topic, celery_events.task_sent(job.task_id, name, job.queue, argsrepr))
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.debug("task_events.publish_failed", error=type(exc).__name__)
