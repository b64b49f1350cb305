"""The worker side of the per-conversation mailbox (see shared/mailbox.py): claim, heartbeat, defer, complete."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from enum import StrEnum
from types import TracebackType

import redis

from shared import mailbox
from shared.logging import get_logger
from shared.redis_scripts import ScriptResult
from workers.errors import JobTimeLimit, LooperaError, WorkerLost

log = get_logger("workers.lease")


class LossKind(StrEnum):
    """How a copy of a job ended where its own code could not see it: Celery's parent process saw it."""

    WORKER_LOST = "worker_lost"  # the pool process died (SIGKILL, OOM); Celery requeues the message
    TIME_LIMIT = "time_limit"  # the pool process was killed at TASK_TIME_LIMIT; Celery acknowledges the message

    def as_error(self) -> LooperaError:
        if self is LossKind.TIME_LIMIT:
            return JobTimeLimit("time_limit", "the job overran TASK_TIME_LIMIT and its process was killed")
        return WorkerLost()


# The claims that let a copy run, and what each says about the previous copy.
RUNNABLE_CLAIMS: dict[ScriptResult, LossKind | None] = {
    ScriptResult.CLAIMED: None,
    ScriptResult.CLAIMED_AFTER_WORKER_LOST: LossKind.WORKER_LOST,
    ScriptResult.CLAIMED_AFTER_TIME_LIMIT: LossKind.TIME_LIMIT,
}


def _now_ms() -> int:
    return int(time.time() * 1000)


class ConversationLeases:
    """Typed wrappers of the mailbox scripts a worker runs (shared/scripts/*.lua). Every script takes the same
    KEYS: the conversation's inbox, the lease set and the job's claim (`run`) key."""

    def __init__(self, client: redis.Redis, lease_seconds: int) -> None:
        self._redis = client
        self.lease_ms = lease_seconds * 1000
        self._claim = client.register_script(mailbox.CLAIM)
        self._renew = client.register_script(mailbox.RENEW)
        self._defer = client.register_script(mailbox.DEFER)
        self._complete = client.register_script(mailbox.COMPLETE)
        self._reap = client.register_script(mailbox.REAP)
        self._release_lost = client.register_script(mailbox.RELEASE_LOST)

    @staticmethod
    def new_token() -> str:
        return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    @staticmethod
    def _keys(conversation: str, task_id: str) -> list[str]:
        return [mailbox.inbox_key(conversation), mailbox.LEASES_KEY, mailbox.run_key(task_id)]

    def claim(self, conversation: str, task_id: str, token: str) -> ScriptResult:
        """claim.lua, ARGV: task_id, now_ms, lease_ms, token -> one of RUNNABLE_CLAIMS, NOT_HEAD or HELD_ELSEWHERE."""
        args: list[str | int] = [task_id, _now_ms(), self.lease_ms, token]
        return ScriptResult(int(self._claim(keys=self._keys(conversation, task_id), args=args)))

    def renew(self, conversation: str, task_id: str, token: str) -> ScriptResult:
        """renew.lua, ARGV: token, now_ms, lease_ms -> RENEWED or CLAIM_LOST."""
        args: list[str | int] = [token, _now_ms(), self.lease_ms]
        return ScriptResult(int(self._renew(keys=self._keys(conversation, task_id), args=args)))

    def defer(self, conversation: str, task_id: str, token: str, countdown: float) -> ScriptResult:
        """defer.lua, ARGV: token, deadline_ms (the retry's due time plus one lease) -> DEFERRED."""
        deadline = _now_ms() + int(countdown * 1000) + self.lease_ms
        return ScriptResult(int(self._defer(keys=self._keys(conversation, task_id), args=[token, deadline])))

    def complete(self, conversation: str, task_id: str, token: str = "") -> ScriptResult:
        """complete.lua, ARGV: task_id, now_ms, lease_ms, token ('' = whoever holds the claim) -> HANDED_ON,
        MAILBOX_EMPTY, NOT_HEAD or HELD_ELSEWHERE."""
        args: list[str | int] = [task_id, _now_ms(), self.lease_ms, token]
        return ScriptResult(int(self._complete(keys=self._keys(conversation, task_id), args=args)))

    def release_lost(self, conversation: str, task_id: str, kind: LossKind) -> ScriptResult:
        """release_lost.lua, ARGV: task_id, now_ms, lease_ms, redispatch, kind -> RELEASED or NOT_HEAD. Leaves a
        tombstone for the dead copy's claim that the next claim takes at once and reports; after a time limit
        (Celery acknowledged the message, nothing will redeliver it) the job is handed out again now."""
        redispatch = 1 if kind is LossKind.TIME_LIMIT else 0
        args: list[str | int] = [task_id, _now_ms(), self.lease_ms, redispatch, kind.value]
        return ScriptResult(int(self._release_lost(keys=self._keys(conversation, task_id), args=args)))

    def reap(self, limit: int = 100) -> int:
        """reap.lua, KEYS: leases; ARGV: now_ms, lease_ms, limit -> how many conversations were handed out again."""
        return int(self._reap(keys=[mailbox.LEASES_KEY], args=[_now_ms(), self.lease_ms, limit]))


class Heartbeat:
    """While a job runs, renew its lease (and run `extra` ticks, e.g. the typing indicator) in the background.

    `max_seconds` stops the beats of a job that overran its hard time limit. Under the threads pool Celery enforces
    no time limit, so a stuck job would otherwise hold its conversation forever; without beats its lease runs out
    and the reaper hands the job to another worker (whose copy is answered once, by its ledger's send states)."""

    def __init__(self, interval: float, beat: Callable[[], object], max_seconds: float | None = None) -> None:
        self._interval = interval
        self._beat = beat
        self._max_seconds = max_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loopera-heartbeat", daemon=True)

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.wait(self._interval):
            if self._max_seconds is not None and time.monotonic() - started > self._max_seconds:
                log.warning("lease.heartbeat_stopped", reason="job overran its time limit")
                return
            try:
                self._beat()
            except Exception as exc:  # a missed beat is survivable; the next one may succeed
                log.warning("lease.heartbeat_failed", error=type(exc).__name__)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=self._interval + 1)
