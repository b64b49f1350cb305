"""Every Lua script the services run in Redis, loaded once from `shared/scripts/*.lua`, and their results.

A script's file starts with a comment naming its KEYS, ARGV and results; `-- include: <name>` lines pull in shared
helpers (dispatch.lua). Results are members of `ScriptResult`, one IntEnum for the API and the workers: the Lua
says `return R.CLAIMED` and the loader writes in the enum's value, so the Lua and the Python
(`is ScriptResult.CLAIMED`) cannot drift apart (an unknown name fails at load).

The typed wrappers that name each script's keys and arguments live with their callers: `workers/delivery/lease.py`
(mailbox), `api/ingest.py` and `workers/delivery/requeue.py` (ingest), `api/identity_links.py` and `api/ingest.py`
(resolve_identity, record_preferences), `workers/clients/rate_limit.py`, `workers/delivery/memory.py`,
`workers/clients/user_rate_limit.py`, `workers/delivery/burst.py`.
"""

from __future__ import annotations

import re
from enum import IntEnum, StrEnum, unique
from functools import cache
from pathlib import Path

SCRIPTS_DIR = Path(__file__).with_name("scripts")


class ScriptName(StrEnum):
    INGEST = "ingest"
    CLAIM = "claim"
    RENEW = "renew"
    DEFER = "defer"
    COMPLETE = "complete"
    REAP = "reap"
    RELEASE_LOST = "release_lost"
    MEMORY_APPEND_ONCE = "memory_append_once"
    RATE_LIMIT_ACQUIRE = "rate_limit_acquire"
    RATE_LIMIT_SETTLE = "rate_limit_settle"
    RATE_LIMIT_COOL_DOWN = "rate_limit_cool_down"
    RESOLVE_IDENTITY = "resolve_identity"
    RECORD_PREFERENCES = "record_preferences"
    LEDGER_CLAIM = "ledger_claim"
    LEDGER_SEND = "ledger_send"
    LEDGER_WRITE = "ledger_write"
    LEDGER_AMEND = "ledger_amend"
    FEEDBACK = "feedback"
    USER_MESSAGE_WINDOW = "user_message_window"
    USER_WINDOW_RELEASE = "user_window_release"
    BURST_CLOSE = "burst_close"


@unique  # a value given twice would silently alias two results
class ScriptResult(IntEnum):
    """What a script answered. Values are unique across scripts, so a misread result cannot pass for another."""

    # ingest, per message (0-2 kept from before the enum: the API counts duplicates with them)
    DUPLICATE = 0
    QUEUED_BEHIND = 1  # behind an earlier job of its conversation
    DISPATCHED = 2  # pushed to its Celery queue now
    # claim, renew, defer, complete, release_lost
    CLAIMED = 10
    CLAIMED_AFTER_WORKER_LOST = 11  # claimed; the previous copy's pool process died (reported by Celery's parent)
    CLAIMED_AFTER_TIME_LIMIT = 12  # claimed; the previous copy was killed at the hard time limit
    NOT_HEAD = 13  # the job is no longer its mailbox's head (done already: a stale copy)
    HELD_ELSEWHERE = 14  # another live copy holds the claim
    RENEWED = 15
    CLAIM_LOST = 16  # renew, ledger_send: this copy no longer holds the claim
    DEFERRED = 17
    HANDED_ON = 18  # complete: the next job of the conversation was dispatched
    MAILBOX_EMPTY = 19  # complete: nothing left in the conversation's mailbox
    RELEASED = 20
    # memory_append_once
    APPENDED = 30
    ALREADY_APPENDED = 31
    # rate_limit_*
    ADMITTED = 40
    OVER_BUDGET = 41
    SETTLED = 42
    NOT_FOUND = 43
    COOLDOWN_SET = 44
    COOLDOWN_KEPT = 45
    # ledger_* (shared/ledger.py); ledger_claim also answers the claim's results above
    NO_LEDGER = 60  # ledger_claim: no ledger for this ref (expired, or never written)
    PART_CLAIMED = 61  # ledger_send: send the part now
    ALREADY_SENT = 62
    IN_FLIGHT = 63  # ledger_send: another copy is sending the part
    BLOCKED = 64  # ledger_send: a send gate is closed
    WRITTEN = 65
    # ledger_amend (an edit or a revoke of an earlier message: shared/amendments.py)
    AMEND_INSTEAD = 70  # an edit replaces the original, whose answer had not gone out
    AMEND_CANCELLED = 71  # a revoke stopped the original's answer before it went out
    AMEND_AFTER = 72  # the original was answered already (or is unknown)
    # user_message_window (the per-user message limit)
    USER_ANSWER = 50
    USER_SLOW_DOWN = 51  # over the limit; this message carries the window's "please slow down"
    USER_QUIET = 52  # over the limit; the window's notice went out already
    # burst_close (workers/delivery/burst.py); it also answers NOT_HEAD and HELD_ELSEWHERE
    MERGED = 73  # the burst is closed: its earlier members merged into its last, which is handed to its queue
    BURST_CHANGED = 74  # a member of the burst was edited or deleted meanwhile: decide it again


_RESULT_NAME = re.compile(r"\bR\.([A-Z_]+)\b")


def _with_result_values(lua: str) -> str:
    """`R.CLAIMED` -> `10` in the code (comments keep the names). Constants cost nothing per call: a one-message
    INGEST took 5.0-5.1 us of Redis time (INFO commandstats, 3 x 20,000 pipelined calls) against 5.0-5.8 us for
    the inline string it replaced, in the same run; a Lua table of results built per call had added 0.3-0.6 us."""
    lines = []
    for line in lua.splitlines(keepends=True):
        code, dashes, comment = line.partition("--")
        lines.append(_RESULT_NAME.sub(lambda m: str(ScriptResult[m[1]].value), code) + dashes + comment)
    return "".join(lines)


@cache
def lua_source(name: ScriptName) -> str:
    """The script's full source (its includes, then its body, with result values filled in). Read once."""
    body = (SCRIPTS_DIR / f"{name.value}.lua").read_text(encoding="utf-8")
    includes = [
        (SCRIPTS_DIR / f"{line.split(':', 1)[1].strip()}.lua").read_text(encoding="utf-8")
        for line in body.splitlines()
        if line.startswith("-- include:")
    ]
    return _with_result_values("".join(includes) + body)
