"""Burst merging in the mailbox: which messages queued behind a conversation's head job form one burst with it, and
the atomic step that merges them into the burst's last message (shared/scripts/burst_close.lua).

A burst is the head job's message plus the messages queued right behind it, each received within the window
(COALESCE_WINDOW_SECONDS) of the one before and within COALESCE_MAX_WAIT_SECONDS of the first. While the next
message could still join (the newest member is younger than the window and the first younger than the cap), the
head job waits, as a deferral: no worker slot is held. Once closed, the earlier members are flagged merged into the
last one, whose own job answers them all (workers/pipelines/burst.py). Membership is decided from arrival times
that never change and a clock that only moves forward: once closed, a burst stays closed, so a retried or
redelivered copy decides the same way.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson
import redis
from pydantic import ValidationError

from shared import mailbox
from shared.jobs import InboundJob
from shared.ledger import WITHDRAWN_FIELDS, ledger_key
from shared.redis_scripts import ScriptName, ScriptResult, lua_source

# The most messages queued behind a head job that one burst can take (the claim returns at most this many).
BURST_PEEK = 20


@dataclass(frozen=True, slots=True)
class Arrival:
    """A message in the mailbox: its ledger's ref, its Celery task id, when the webhook queued it (epoch ms), and
    its job (None: the ledger is gone or does not validate; such a message never joins a burst)."""

    ref: str
    task_id: str
    received_ms: int
    job: InboundJob | None
    # Edited or deleted before its answer (the API flagged it superseded or cancelled: shared/scripts/
    # ledger_amend.lua): it keeps its place in a burst but adds nothing to the answer (its edit is answered on its
    # own), and never ends one (the burst's answer lives in its last message, whose flag would stop it).
    withdrawn: bool = False


@dataclass(frozen=True, slots=True)
class Open:
    """The burst may still grow: look again in `wait_ms`."""

    wait_ms: int


@dataclass(frozen=True, slots=True)
class Closed:
    """The burst's members, in arrival order (the first is the head job)."""

    members: tuple[Arrival, ...]


def burst_of(
    head: Arrival,
    behind: Sequence[Arrival],
    window_ms: int,
    max_wait_ms: int,
    now_ms: int,
    joins: Callable[[InboundJob], bool],
) -> Open | Closed:
    """The burst starting at `head` (a pure function of its inputs). A message that cannot join (`joins` false: a
    command, a sticker, a group message...) or arrived too late ends the burst before it; if one is already queued,
    the burst is closed at once (nothing after it could join). Withdrawn messages (edited or deleted before their
    answer) at its end are left out, so the burst's last message is one that gets answered."""
    if window_ms <= 0 or head.job is None or not joins(head.job):
        return Closed((head,))
    cap = head.received_ms + max_wait_ms
    members = [head]
    for arrival in behind:
        gap = arrival.received_ms - members[-1].received_ms
        if arrival.job is None or not joins(arrival.job) or gap > window_ms or arrival.received_ms > cap:
            return Closed(_answerable(members))
        members.append(arrival)
    due = min(members[-1].received_ms + window_ms, cap)
    return Open(due - now_ms) if now_ms < due else Closed(_answerable(members))


def _answerable(members: list[Arrival]) -> tuple[Arrival, ...]:
    """The members up to the last one not withdrawn (the head at least)."""
    end = len(members)
    while end > 1 and members[end - 1].withdrawn:
        end -= 1
    return tuple(members[:end])


def task_and_ref(entry: bytes) -> tuple[str, str] | None:
    """(task id, ledger ref) of a mailbox entry `<task_id> <queue> <celery envelope>` (shared/mailbox.py), whose
    envelope's only argument is the ref (shared/celery_protocol.py); None for an entry of another shape (a job
    queued whole by an older API)."""
    try:
        task_id, _queue, envelope = entry.split(b" ", 2)
        args = orjson.loads(base64.b64decode(orjson.loads(envelope)["body"]))[0]
    except (ValueError, KeyError, TypeError, IndexError, orjson.JSONDecodeError):
        return None
    if len(args) != 1 or not isinstance(args[0], str):
        return None
    return task_id.decode(), args[0]


def arrivals(client: redis.Redis, entries: Sequence[bytes]) -> list[Arrival]:
    """The messages behind the head, in mailbox order, with their ledgers' arrival times and jobs: one round trip
    (none for an empty list). Stops at the first entry it cannot read (it cannot join, so the burst ends there)."""
    parsed: list[tuple[str, str]] = []
    for item in entries:
        pair = task_and_ref(item)
        if pair is None:
            break
        parsed.append(pair)
    if not parsed:
        return []
    pipe = client.pipeline(transaction=False)
    for _task_id, ref in parsed:
        pipe.hmget(ledger_key(ref), "received_ms", "job", *WITHDRAWN_FIELDS)
    found: list[Arrival] = []
    for (task_id, ref), (received, job_json, *flags) in zip(parsed, pipe.execute(), strict=True):
        job: InboundJob | None = None
        if received is None or job_json is None:
            found.append(Arrival(ref, task_id, 0, None))
            break
        try:
            job = InboundJob.model_validate_json(job_json)
        except ValidationError:
            job = None
        found.append(Arrival(ref, task_id, int(received), job, any(flag is not None for flag in flags)))
    return found


class BurstCloser:
    """burst_close.lua: merge a closed burst's earlier members into its last one, atomically."""

    def __init__(self, client: redis.Redis, lease_seconds: int) -> None:
        self._close = client.register_script(lua_source(ScriptName.BURST_CLOSE))
        self._lease_ms = lease_seconds * 1000

    def close(self, conversation: str, token: str, members: Sequence[Arrival]) -> ScriptResult:
        """Returns MERGED, HELD_ELSEWHERE (this copy lost the head's claim), NOT_HEAD (the inbox changed under
        it) or BURST_CHANGED (a member was edited or deleted meanwhile: decide again); nothing changed in the last
        three cases. `members`: at least two, the first is the claimed head."""
        head, last = members[0], members[-1]
        keys = [mailbox.inbox_key(conversation), mailbox.LEASES_KEY, mailbox.run_key(head.task_id)]
        keys += [ledger_key(member.ref) for member in members]
        burst = orjson.dumps([member.ref for member in members]).decode()
        args: list[str | int] = [token, int(time.time() * 1000), self._lease_ms, last.ref, burst]
        args += [member.task_id for member in members]
        return ScriptResult(int(self._close(keys=keys, args=args)))
