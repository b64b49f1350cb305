"""Durable hand-off of a webhook's messages to Redis: dedupe + mailbox + Celery queue in one atomic script."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

import redis.asyncio as aioredis

from api.identity_links import IdentityLinks
from api.redis_channel import ScriptChannel
from api.task_events import TaskSentAnnouncer
from api.webhook_payload import PreferenceUpdate, PreparedJob, TrackedStatus
from shared import mailbox
from shared.dead_letters import DLQ_KEY, DLQ_MAX, STATUS_TASK
from shared.handoff import PAUSED_FIELD
from shared.identity import LINK_TTL_SECONDS, PREFERENCES_PREFIX
from shared.ledger import CONVERSATION_STATE_PREFIX, LEDGER_PREFIX, conversation_state_key, ledger_key
from shared.redis_scripts import ScriptName, ScriptResult, lua_source
from shared.undelivered import KEEP_ERROR_CODES, KEPT_ANSWERS, KEPT_KINDS, UNDELIVERED_PREFIX

# The ingest script's results per message (shared/scripts/ingest.lua).
DUPLICATE, QUEUED_BEHIND, DISPATCHED = ScriptResult.DUPLICATE, ScriptResult.QUEUED_BEHIND, ScriptResult.DISPATCHED

_LEASES = mailbox.LEASES_KEY.encode()


def _status_constants(undelivered_ttl_seconds: int) -> list[bytes]:
    """The fixed head of the ingest script's status section (shared/scripts/record_status.lua)."""
    values: list[str | int] = [
        LEDGER_PREFIX,
        CONVERSATION_STATE_PREFIX,
        UNDELIVERED_PREFIX,
        undelivered_ttl_seconds,
        KEPT_ANSWERS,
        "," + ",".join(map(str, KEEP_ERROR_CODES)) + ",",
        "," + ",".join(KEPT_KINDS) + ",",
        DLQ_KEY,
        DLQ_MAX,
        STATUS_TASK,
    ]
    return [str(value).encode() for value in values]


class ScriptRunner(Protocol):
    """What runs the ingest script: `api.redis_channel.ScriptChannel` (bench/ingest_clients.py measures others)."""

    async def run(self, keys: list[bytes], args: list[bytes]) -> Any: ...

    async def close(self) -> None: ...


class Ingestor:
    """`channel` runs the script (default: the pipelined `api.redis_channel.ScriptChannel` on `client`, waiting for
    `ack_replicas` replicas up to `ack_wait_ms`)."""

    def __init__(
        self,
        client: aioredis.Redis,
        dedupe_ttl_seconds: int,
        lease_seconds: int,
        channel: ScriptRunner | None = None,
        announce_to_flower: bool = False,
        ack_replicas: int = 0,
        ack_wait_ms: int = 500,
        ledger_ttl_seconds: int = 2 * 24 * 3600,
        undelivered_ttl_seconds: int = 7 * 24 * 3600,
    ) -> None:
        self._redis = client
        self._channel = channel or ScriptChannel(client, mailbox.INGEST, ack_replicas, ack_wait_ms)
        self._announcer = TaskSentAnnouncer(client) if announce_to_flower else None
        self._identities = IdentityLinks(client)
        self._record_preferences = client.register_script(lua_source(ScriptName.RECORD_PREFERENCES))
        self._amend = client.register_script(lua_source(ScriptName.LEDGER_AMEND))
        self._ttl = str(dedupe_ttl_seconds).encode()
        self._lease_ms = str(lease_seconds * 1000).encode()
        self._ledger_ttl = str(ledger_ttl_seconds).encode()
        self._status_head = _status_constants(undelivered_ttl_seconds)

    async def ingest(self, jobs: Sequence[PreparedJob]) -> list[int]:
        """`record(jobs)`'s results per message."""
        return (await self.record(jobs))[0]

    async def record(
        self, jobs: Sequence[PreparedJob], statuses: Sequence[TrackedStatus] = ()
    ) -> tuple[list[int], list[int]]:
        """One round trip for the whole batch: its messages and the statuses of our reply parts. The script is
        atomic, so either a message's dedupe marker, its ledger and its job all exist or none does: a failed enqueue
        can never make Meta's redelivery look like a duplicate; recording a status twice changes nothing. Returns
        (per message: DUPLICATE / QUEUED_BEHIND / DISPATCHED, per status: ms from the user's message to this
        `delivered` when it is the message's first, else -1). Raises redis errors; the caller answers 503 and Meta
        redelivers."""
        if not jobs and not statuses:
            return [], []
        # Who is talking first: a person's phone number and user id lead to one mailbox (shared/identity.py).
        if jobs:
            await self._identities.resolve(jobs)
            amendments = [job for job in jobs if job.amends]
            if amendments:
                await self.amend(amendments)
        keys: list[bytes] = [_LEASES]
        args: list[bytes] = [b"%d" % int(time.time() * 1000), self._lease_ms, self._ttl, self._ledger_ttl]
        for job in jobs:
            conversation = job.conversation.encode()
            keys += (
                mailbox.seen_key(job.ref).encode(),
                mailbox.INBOX_PREFIX.encode() + conversation,
                ledger_key(job.ref).encode(),
            )
            args += (job.task_id.encode(), job.queue.encode(), job.envelope, conversation, job.job)
        if statuses:
            args += self._status_head
            args.append(b"%d" % len(statuses))
            for status in statuses:
                args += (
                    status.ref.encode(),
                    status.part.encode(),
                    status.status.encode(),
                    b"%d" % status.at_ms,
                    status.wamid.encode(),
                    status.code.encode(),
                    status.outgoing.encode(),
                )
        reply: list[Any] = await self._channel.run(keys, args)
        results = [int(value) for value in reply[: len(jobs)]]
        if self._announcer is not None and jobs:
            self._announcer.announce(jobs, results)
        latencies = [int(value) for value in reply[len(jobs)]] if statuses else []
        return results, latencies

    async def amend(self, amendments: Sequence[PreparedJob]) -> list[ScriptResult]:
        """Decide edits and revokes against their original's send gate (shared/scripts/ledger_amend.lua), before
        they are queued: an original whose answer has not gone out is flagged (superseded or cancelled) so it never
        does. A round trip of its own, only for batches that hold an edit or a revoke. Safe to repeat (a redelivery
        keeps its first decision). Raises redis errors (the caller answers 503)."""
        keys: list[str] = []
        args: list[str | int] = [LEDGER_PREFIX, int(self._ledger_ttl)]
        for job in amendments:
            keys += (ledger_key(job.amends), ledger_key(job.ref))
            args += (str(job.fields.get("message_type", "")), job.ref, job.amends)
        return [ScriptResult(int(code)) for code in await self._amend(keys=keys, args=args)]

    async def pause(self, echoes: Sequence[PreparedJob], minutes: int) -> None:
        """Pause the conversations a person wrote in (shared/handoff.py), before their echoes are queued: the send
        gate then holds an answer already being computed. Each echo is first moved to its user's conversation
        (phone or BSUID lead to one, api/identity_links.py). Raises redis errors (the caller answers 503)."""
        await self._identities.resolve(echoes)
        until = int(time.time() * 1000) + minutes * 60_000
        pipe = self._redis.pipeline(transaction=False)
        for conversation in dict.fromkeys(job.conversation for job in echoes):
            pipe.hset(conversation_state_key(conversation), PAUSED_FIELD, until)
        await pipe.execute()

    async def record_preferences(self, updates: Sequence[PreferenceUpdate]) -> int:
        """Store marketing-preference updates (newest per person and category wins); one round trip. Raises redis
        errors; the caller answers 503 and Meta redelivers."""
        keys = [(PREFERENCES_PREFIX + update.person).encode() for update in updates]
        args: list[bytes] = [str(LINK_TTL_SECONDS).encode()]
        for update in updates:
            args += (update.category.encode(), update.value.encode(), b"%d" % update.timestamp)
        return int(await self._record_preferences(keys=keys, args=args))

    async def ping(self) -> bool:
        return bool(await self._redis.ping())

    async def close(self) -> None:
        await self._channel.close()
        await self._identities.close()
        await self._redis.aclose()
