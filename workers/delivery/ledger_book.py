"""The ledgers of a worker process: claim a job through its ledger (the mailbox claim, the ledger and the
conversation's memory in one round trip), and find a running job's ledger from the job."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import orjson
import redis
from pydantic import ValidationError

from shared import mailbox
from shared.jobs import InboundJob
from shared.ledger import CONVERSATION_STATE_PREFIX, as_text, decode_fields, ledger_key
from shared.redis_scripts import ScriptName, ScriptResult, lua_source
from workers.clients.user_rate_limit import USER_LIMIT_PREFIX
from workers.delivery.lease import RUNNABLE_CLAIMS, LossKind
from workers.delivery.ledger import MessageLedger
from workers.delivery.memory import MEMORY_PREFIX, MemoryEntry
from workers.delivery.outgoing import OutgoingMessages


@dataclass(frozen=True, slots=True)
class Claimed:
    """This copy holds the job. `job` is None when the ledger's job does not validate (`errors`, `detail` say why):
    the conversation must then be released by `conversation` and `task_id`."""

    ref: str
    conversation: str
    task_id: str
    ledger: MessageLedger
    job: InboundJob | None
    # How the previous copy ended when Celery's parent saw it die (the claim took its tombstone), else None.
    lost: LossKind | None = None
    errors: int = 0
    detail: str = ""
    # The mailbox entries queued behind this job, as the claim read them (burst merging: workers/delivery/burst.py);
    # empty when merging is off or the ledger names its closed burst.
    behind: tuple[bytes, ...] = ()


class LedgerBook:
    """The ledgers of the jobs running in this worker process, by job id, so pipelines find theirs from the job
    they are given (`of(job)`) without a new argument through every call."""

    def __init__(
        self,
        client: redis.Redis,
        lease_seconds: int,
        memory_max: int,
        memory_ttl_seconds: int,
        user_messages_per_window: int = 0,
        user_window_seconds: float = 60.0,
        confirm_wait_seconds: float = 20.0,
        burst_peek: int = 0,
        outgoing: OutgoingMessages | None = None,
    ) -> None:
        self._redis = client
        self._open: dict[str, MessageLedger] = {}
        self._lock = threading.Lock()
        self._claim = client.register_script(lua_source(ScriptName.LEDGER_CLAIM))
        self._lease_ms = lease_seconds * 1000
        self._memory = (memory_max, memory_ttl_seconds)
        # The per-user message window, counted by the claim (shared/scripts/ledger_claim.lua); 0 = off.
        self._user_window = (user_messages_per_window, int(user_window_seconds * 1_000_000))
        self._confirm_wait = confirm_wait_seconds
        # How many entries queued behind a claimed job the claim returns (0 = burst merging off).
        self._burst_peek = burst_peek
        # The bot's sent messages by Meta's id (workers/delivery/outgoing.py), recorded by each ledger's sends.
        self.outgoing = outgoing

    @contextmanager
    def running(self, ledger: MessageLedger) -> Iterator[MessageLedger]:
        with self._lock:
            self._open[ledger.job.job_id] = ledger
        try:
            yield ledger
        finally:
            with self._lock:
                self._open.pop(ledger.job.job_id, None)

    def of(self, job: InboundJob) -> MessageLedger:
        """The ledger of a running job. A job run outside the job runner (a unit test) gets one of its own, keyed
        by its job id and without a claim check."""
        with self._lock:
            ledger = self._open.get(job.job_id)
            if ledger is None:
                ledger = MessageLedger(self._redis, job.job_id, job, outgoing=self.outgoing)
                self._open[job.job_id] = ledger
            return ledger

    def claim(self, ref: str, token: str) -> Claimed | ScriptResult:
        """Claim the job whose ledger is `ref` for the copy holding `token`. Returns `Claimed`, or why not
        (NOT_HEAD: already done; HELD_ELSEWHERE: another live copy runs it; NO_LEDGER: expired or never written)."""
        now = int(time.time() * 1000)
        memory_max, memory_ttl = self._memory
        reply = self._claim(
            keys=[ledger_key(ref), mailbox.LEASES_KEY],
            args=[
                now,
                self._lease_ms,
                token,
                mailbox.INBOX_PREFIX,
                mailbox.RUN_PREFIX,
                MEMORY_PREFIX,
                memory_max,
                memory_ttl,
                *self._user_window,
                USER_LIMIT_PREFIX,
                CONVERSATION_STATE_PREFIX,
                self._burst_peek,
            ],
        )
        result = ScriptResult(int(reply[0]))
        if result not in RUNNABLE_CLAIMS:
            return result
        lost = RUNNABLE_CLAIMS[result]
        fields = decode_fields(reply[1])
        history: list[MemoryEntry] = [orjson.loads(item) for item in reply[2]]
        try:
            job: InboundJob | None = InboundJob.model_validate_json(fields.get("job", ""))
        except ValidationError as exc:
            placeholder = InboundJob.model_construct(job_id=fields["task"], conversation=fields["conv"])
            ledger = MessageLedger(self._redis, ref, placeholder, token, fields)
            errors, detail = exc.error_count(), str(exc)[:500]
            return Claimed(ref, fields["conv"], fields["task"], ledger, None, lost, errors, detail)
        assert job is not None
        ledger = MessageLedger(
            self._redis,
            ref,
            job,
            token,
            fields,
            history,
            confirm_wait_seconds=self._confirm_wait,
            outgoing=self.outgoing,
        )
        # The conversation's opt-out and pause as the claim read them (workers/pipelines/controls.py), and whether
        # answers are kept for it (workers/pipelines/window.py): no round trip of their own on the common path.
        opted_out, paused_until, kept = (as_text(value) if value is not None else None for value in reply[3])
        ledger.conversation_flags = (opted_out, paused_until)
        ledger.kept_answers = kept is not None
        behind = tuple(reply[4]) if len(reply) > 4 else ()
        return Claimed(ref, job.conversation, job.job_id, ledger, job, lost, behind=behind)


def adopt(client: redis.Redis, job: InboundJob, ttl_seconds: int) -> str:
    """Give a job queued whole (by an API from before the ledger) a ledger of its own, keyed by its job id (a random
    id: nothing personal in the key). Returns the ref. Its stage results and send states are kept from any
    earlier run of the same job id."""
    ref = job.job_id
    key = ledger_key(ref)
    pipe = client.pipeline(transaction=True)
    pipe.hset(key, mapping={"job": job.model_dump_json(), "conv": job.conversation, "task": job.job_id})
    pipe.hsetnx(key, "received_ms", int(job.received_at * 1000))
    pipe.expire(key, ttl_seconds)
    pipe.execute()
    return ref
