"""Resolve each message's sender to its conversation before the ingest script runs (shared/identity.py).

One atomic script call per webhook for the senders this process has not resolved lately. A sender that carries a
business-scoped user id (BSUID) is cached here for an hour: its link is never re-pointed by the script, so the
answer cannot change meanwhile, and the hour refreshes the links' TTL in Redis. Senders known only by phone number
are resolved every time (their link follows a BSUID seen later), and groups need no link at all.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import redis.asyncio as aioredis

from api.redis_channel import ScriptChannel
from api.webhook_payload import PreparedJob
from shared.identity import LINK_TTL_SECONDS, USER, link_key
from shared.redis_scripts import ScriptName, lua_source

CACHE_SECONDS = 3600.0
CACHE_ENTRIES = 100_000


class IdentityLinks:
    def __init__(self, client: aioredis.Redis, link_ttl_seconds: int = LINK_TTL_SECONDS) -> None:
        # Pipelined like the ingest script: concurrent webhooks share one round trip. No WAIT for replicas: a link
        # lost in a failover only costs a first-seen identity pair its link, re-made by the person's next message.
        self._channel = ScriptChannel(client, lua_source(ScriptName.RESOLVE_IDENTITY))
        self._ttl = str(link_ttl_seconds).encode()
        self._cache: dict[tuple[str, ...], tuple[str, float]] = {}

    async def close(self) -> None:
        await self._channel.close()

    async def resolve(self, jobs: Sequence[PreparedJob]) -> None:
        """Move every job to its sender's conversation. Raises redis errors (nothing is queued then)."""
        now = time.monotonic()
        pending: list[PreparedJob] = []
        for job in jobs:
            if job.sender is None or not job.sender.links:
                continue
            cached = self._cache.get(job.sender.links)
            if cached is not None and cached[1] > now:
                job.move_to(cached[0])
            else:
                pending.append(job)
        if not pending:
            return
        keys: list[bytes] = []
        args: list[bytes] = [self._ttl]
        for job in pending:
            assert job.sender is not None
            keys += (link_key(digest).encode() for digest in job.sender.links)
            args += (b"%d" % len(job.sender.links), job.sender.candidate.encode())
        conversations = await self._channel.run(keys, args)
        if len(self._cache) > CACHE_ENTRIES:
            self._cache.clear()  # rare and cheap: the next message of each sender costs one resolution again
        for job, raw in zip(pending, conversations, strict=True):
            assert job.sender is not None
            conversation = raw.decode() if isinstance(raw, bytes) else str(raw)
            job.move_to(conversation)
            if job.sender.links[0].startswith(USER + ":"):
                self._cache[job.sender.links] = (conversation, now + CACHE_SECONDS)
