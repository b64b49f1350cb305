"""The worker's typed API to a message's ledger (layout in shared/ledger.py): exactly-once as one mechanism.

- `stage(name, compute)`: the stored result of a stage, or compute it and keep it, so a retried job re-sends the same
  words (a reply split in parts must never mix two generations) and keeps its first verdicts.
- `send_once(part, send)`: claims the part in one atomic step that also checks the send gates (the message's flags,
  the conversation's pause, opt-out and customer service window) and that this copy still holds the job's claim.
- `count_attempt()`, `remember(...)` (the memory-written flag), `note(...)`.

Round trips: writes that need not happen *before* something else wait in `_pending` and travel with the ledger's
next script (a stage's result with the claim of the part that sends it; a part's `done` with the next part's claim
or the memory append). `flush()` writes what is left; the job runner calls it on every way out of a run.
Graph has no idempotency key. Every part is sent with `biz_opaque_callback_data` naming it (shared/callback_data.py),
and any status webhook Meta sends for it marks it `done` (shared/scripts/record_status.lua). A send whose HTTP answer
was lost (it may have reached Meta) keeps the part `sending` for SEND_CONFIRM_WAIT_SECONDS and the job is deferred:
a status seen by then means sent; none means it is sent again. What is left of at-least-once is in
docs/guarantees.md.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import Enum
from typing import Any, TypeVar, cast

import orjson
import redis

from shared import callback_data
from shared.jobs import InboundJob
from shared.ledger import CUSTOMER_SERVICE_WINDOW_SECONDS, conversation_state_key, ledger_key
from shared.logging import get_logger
from shared.redis_scripts import ScriptName, ScriptResult, lua_source
from workers.clients.graph import tagged
from workers.clients.graph_errors import GraphTransientError
from workers.delivery.memory import ConversationMemory, MemoryEntry
from workers.delivery.outgoing import OUTGOING_WRITE, OutgoingMessages
from workers.delivery.service_window import user_sent_at
from workers.errors import WaitError

log = get_logger("workers.ledger")

# Reply parts that are not answers: the acknowledgement reaction (workers/pipelines/ack_reaction.py). An edit or a
# revoke arriving after one of them still replaces or cancels the answer (shared/scripts/ledger_amend.lua).
ASIDE_PART_PREFIX = "ack:"

T = TypeVar("T")


class SendResult(Enum):
    SENT = "sent"
    ALREADY_SENT = "already_sent"
    BLOCKED = "blocked"


class SendInFlightError(WaitError):
    """Another copy is sending this part, died while sending it, or holds the job now: come back later.
    A wait, not a failure: the job runner defers without spending an attempt (a copy killed mid-send leaves the
    part `sending` for up to `in_flight_seconds`, longer than all attempts' backoffs together)."""

    def __init__(self, retry_after: float = 5.0) -> None:
        super().__init__("send_in_flight", "another copy of this job is sending this part", retry_after=retry_after)


class SendUnconfirmedError(WaitError):
    """The part's send lost its HTTP answer and may have reached Meta: the job comes back to see whether a status
    webhook confirmed it (then it is `done`) or the wait ran out (then it is sent again). A wait, not a failure."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("send_unconfirmed", "waiting for Meta's status of a send whose answer was lost", retry_after)


# How often a job waiting for a part's confirmation looks again (seconds): a status usually comes within seconds,
# and each look is one deferral (a Celery retry and a claim), cheap next to the user waiting the whole window.
CONFIRM_POLL_SECONDS = 4.0


def _now_ms() -> int:
    return int(time.time() * 1000)


def window_until_ms(job: InboundJob) -> int:
    """End of the customer service window this message opened: 24 h after the user's `timestamp` (unix seconds;
    our receipt when it is missing). Not after our receipt: Meta measures from the user's message, so a backlog it
    delivers more than 24 h late is refused (131047) however fresh its delivery (issue #15). The conversation's
    `window_until` (a later message) may extend it; see workers/delivery/service_window.py."""
    return int((user_sent_at(job) + CUSTOMER_SERVICE_WINDOW_SECONDS) * 1000)


class MessageLedger:
    """One job run's view of its message's ledger. `fields` is the ledger as the claim loaded it; `history` the
    conversation's memory loaded in the same round trip. `token` is this run's claim ("" = opened without a claim:
    no claim check, for jobs run outside the job runner)."""

    def __init__(
        self,
        client: redis.Redis,
        ref: str,
        job: InboundJob,
        token: str = "",
        fields: dict[str, str] | None = None,
        history: list[MemoryEntry] | None = None,
        in_flight_seconds: int = 60,
        confirm_wait_seconds: float = 20.0,
        outgoing: OutgoingMessages | None = None,
    ) -> None:
        self._redis = client
        self.ref = ref
        self.key = ledger_key(ref)
        self.job = job
        self.token = token
        self.fields: dict[str, str] = dict(fields or {})
        self.history = history
        self.blocked_by: str | None = None
        # Set by the user's `delete` (workers/pipelines/controls.py): the job runner removes this ledger (the
        # last record of the user's message) once the job is done and its conversation completed.
        self.discard_when_done = False
        # (opted_out, paused_until) of the conversation's state as the claim read them; None: not read (a ledger
        # opened without the claim script).
        self.conversation_flags: tuple[str | None, str | None] | None = None
        # Whether the conversation has answers kept from a closed window (None: not read by a claim).
        self.kept_answers: bool | None = None
        self._in_flight_ms = in_flight_seconds * 1000
        self._confirm_wait_ms = int(confirm_wait_seconds * 1000)
        self._outgoing = outgoing
        self._pending: dict[str, str] = {}
        self._lock = threading.Lock()  # a voice reply's chunks are synthesised on threads
        self._send = client.register_script(lua_source(ScriptName.LEDGER_SEND))
        self._write = client.register_script(lua_source(ScriptName.LEDGER_WRITE))

    # --- stages -------------------------------------------------------------------------------------------------
    def stage(self, name: str, compute: Callable[[], T]) -> T:
        """The stored result of stage `name`, or `compute()` kept as JSON (str, numbers, lists, dicts) with its
        duration. Written with the ledger's next write, which comes before anything is sent."""
        field = f"stage:{name}"
        with self._lock:
            stored = self._pending.get(field, self.fields.get(field))
        if stored is not None:
            return cast(T, orjson.loads(stored)["v"])
        started = time.monotonic()
        try:
            value = compute()
        except BaseException as exc:
            self._queue(f"{field}:error", type(exc).__name__)
            raise
        record = {"v": value, "ms": round((time.monotonic() - started) * 1000, 1), "at": _now_ms()}
        self._queue(field, orjson.dumps(record).decode())
        return value

    def stored(self, name: str) -> Any:
        """A stage's stored result, or None."""
        stored = self.fields.get(f"stage:{name}")
        return orjson.loads(stored)["v"] if stored is not None else None

    # --- sends --------------------------------------------------------------------------------------------------
    def holds(self, key: str, ttl_seconds: int) -> bool:
        """Whether this message holds `key`, a once-per-period marker of its conversation (one late-message notice
        per backlog, one template per day): taken when free, and kept across this message's own retries (its value
        is the ref), so a retry after a failed send still sends, while every other message finds it taken. A GET
        only when the SET finds the key set."""
        if self._redis.set(key, self.ref, nx=True, ex=ttl_seconds):
            return True
        return bool(self._redis.get(key) == self.ref.encode())

    def was_sent(self, part: str) -> bool:
        return self.fields.get(f"send:{part}") == "done"

    def send_once(self, part: str, send: Callable[[], str], template: bool = False) -> SendResult:
        """Run `send` (returns Meta's message id) unless this part was sent before or a send gate is closed.
        An approved `template` passes the customer-service-window gate (the one kind of message Meta accepts
        outside the window); the other gates still apply. Raises SendInFlightError when another copy is sending it
        or this copy lost the job's claim."""
        window = _now_ms() + 1 if template else window_until_ms(self.job)
        return self._send_part(part, send, window, gates=True, pending=self._take_pending(), carry=True)

    def send_aside(self, part: str, send: Callable[[], str], gates: bool = True) -> SendResult:
        """`send_once` for a part that is not the answer (ASIDE_PART_PREFIX: the acknowledgement reaction), safe
        from another thread while the pipeline runs: it carries none of the pipeline's pending writes (a stage's
        result must reach Redis with the part that sends it) and a closed gate does not count as the answer's
        (`blocked_by`). `gates=False` skips the gates (taking the reaction back is always allowed)."""
        return self._send_part(part, send, window_until_ms(self.job), gates=gates, pending={}, carry=False)

    def _send_part(
        self, part: str, send: Callable[[], str], window: int, *, gates: bool, pending: dict[str, str], carry: bool
    ) -> SendResult:
        now = _now_ms()
        args: list[str | int] = [self.token, part, now, self._in_flight_ms, window, "1" if gates else "0"]
        args += [len(pending), *(item for pair in pending.items() for item in pair)]
        try:
            code, detail = self._send(keys=[self.key, conversation_state_key(self.job.conversation)], args=args)
        except BaseException:
            self._restore(pending)
            raise
        self.fields.update(pending)
        claim = ScriptResult(int(code))
        if claim is ScriptResult.ALREADY_SENT:
            self.fields[f"send:{part}"] = "done"
            return SendResult.ALREADY_SENT
        if claim is ScriptResult.IN_FLIGHT:
            wait = max(1.0, int(detail) / 1000)
            if f"send:{part}:unconfirmed" in self.fields:
                wait = min(wait, CONFIRM_POLL_SECONDS)  # a status may confirm it any moment: look again soon
            raise SendInFlightError(wait)
        if claim is ScriptResult.CLAIM_LOST:
            raise SendInFlightError()
        if claim is ScriptResult.BLOCKED:
            gate = detail.decode() if isinstance(detail, bytes) else str(detail)
            if carry:
                self.blocked_by = gate
            log.info("reply.blocked", ref=self.ref[:12], part=part, gate=gate)
            return SendResult.BLOCKED
        meta_id = self._deliver(part, send, carry)
        self.fields[f"send:{part}"] = "done"
        self._queue(f"send:{part}", "done")
        self._queue(f"send:{part}:meta", meta_id or "")
        self._queue(f"send:{part}:at", str(_now_ms()))
        if not part.startswith(ASIDE_PART_PREFIX):
            self._record_outgoing(meta_id, part)
        return SendResult.SENT

    def _deliver(self, part: str, send: Callable[[], str], carry: bool) -> str:
        """Run the claimed part's `send`, tagged with its callback data (shared/callback_data.py). A send that may
        have reached Meta waits for its status (SendUnconfirmedError); any other failure takes the part back."""
        data = callback_data.encode(self.ref, part)
        try:
            if data is None:
                return send()
            with tagged(data):
                return send()
        except GraphTransientError as exc:
            if exc.maybe_delivered and self._confirm_wait_ms > 0 and data is not None and carry:
                self._await_confirmation(part)
                raise SendUnconfirmedError(min(self._confirm_wait_ms / 1000, CONFIRM_POLL_SECONDS)) from exc
            self._release(part, carry)
            raise
        except BaseException:
            # Graph did not accept it: take the part back so a retry sends it.
            self._release(part, carry)
            raise

    def _release(self, part: str, carry: bool = True) -> None:
        """Take an unsent part back; with `carry`, the pending writes travel along."""
        self._write(keys=[self.key], args=[self.token, part, *(self._pending_args() if carry else [0])])

    def _await_confirmation(self, part: str) -> None:
        """Keep the part `sending` until the confirmation wait ends: a status webhook for it (recorded by the API)
        marks it `done` meanwhile; else the send gate hands it out again after the wait."""
        now = _now_ms()
        self._queue(f"send:{part}:until", str(now + self._confirm_wait_ms))
        self._queue(f"send:{part}:unconfirmed", str(now))
        self.flush()

    def _record_outgoing(self, meta_id: str, part: str) -> None:
        """So a reaction to this message finds this answer: a pending write like the part's `done`, travelling
        with the ledger's next script (shared/scripts/pending_writes.lua), not a round trip of its own."""
        if self._outgoing is not None and meta_id:
            self._queue(*self._outgoing.pending_write(meta_id, self.ref, part))

    # --- memory, attempts, notes -------------------------------------------------------------------------------
    def remember(self, memory: ConversationMemory, *entries: MemoryEntry) -> bool:
        """Append this message's turn to the conversation's memory once (the ledger's `memory` flag), with the
        pending writes in the same script. False when the turn was already stored."""
        pending = self._take_pending()
        # Each turn names its message (and, for an edit, the message it edited), so an edit or a revoke that
        # comes later finds it (workers/pipelines/amendments.py).
        amended = self.fields.get("amend_of")
        stamped = [cast(MemoryEntry, {"ref": self.ref, **turn}) for turn in entries]  # a burst names each member
        if amended:
            for turn in stamped:
                turn["of"] = amended
        try:
            written = memory.append(
                self.job.conversation, *stamped, ledger=self.key, token=self.token, ledger_writes=pending
            )
        except BaseException:
            self._restore(pending)
            raise
        self.fields.update(pending)
        return written

    def count_attempt(self) -> int:
        """Failed attempts of this job so far, this one included (written at once, with what is pending)."""
        pipe = self._redis.pipeline(transaction=True)
        pending = self._take_pending()
        fields = {field: value for field, value in pending.items() if not field.startswith(OUTGOING_WRITE)}
        if fields:
            pipe.hset(self.key, mapping=dict(fields.items()))
        for field, value in pending.items():
            if field.startswith(OUTGOING_WRITE):  # see OutgoingMessages.pending_write
                ttl, mapped = value.split(" ", 1)
                pipe.set(field.removeprefix(OUTGOING_WRITE), mapped, ex=int(ttl))
        pipe.hincrby(self.key, "attempts", 1)
        replies = pipe.execute()
        return int(replies[-1])

    def note(self, field: str, value: str) -> None:
        """Record a fact with the next write (e.g. how a run ended)."""
        self._queue(field, value)

    def flush(self) -> None:
        """Write what is pending (one round trip, none when nothing is)."""
        pending = self._take_pending()
        if not pending:
            return
        try:
            self._write(keys=[self.key], args=[self.token, "", len(pending), *self._flat(pending)])
        except BaseException:
            self._restore(pending)
            raise
        self.fields.update(pending)

    # --- internals ---------------------------------------------------------------------------------------------
    def _queue(self, field: str, value: str) -> None:
        with self._lock:
            self._pending[field] = value

    def _take_pending(self) -> dict[str, str]:
        with self._lock:
            pending, self._pending = self._pending, {}
        return pending

    def _restore(self, pending: dict[str, str]) -> None:
        with self._lock:
            self._pending = pending | self._pending

    def _pending_args(self) -> list[str | int]:
        pending = self._take_pending()
        return [len(pending), *self._flat(pending)]

    @staticmethod
    def _flat(pending: dict[str, str]) -> list[str]:
        return [item for pair in pending.items() for item in pair]
