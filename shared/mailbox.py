"""Per-conversation mailboxes: exactly one job of a conversation is in Celery at any time, in arrival order.

Layout in Redis:
- `lp:seen:<ref>`       dedupe marker (SET NX, >= 7 days), written in the same atomic script as the enqueue and the
                         message's ledger (`lp:msg:<ref>`, shared/ledger.py), so a marker can never exist for a
                         message that was not queued; `<ref>` is the keyed hash of the message id;
- `lp:inbox:<conv>`      list of entries `<task_id> <queue> <celery envelope>`; the head is the job in flight;
- `lp:leases`            sorted set: inbox key -> deadline (ms). A running job pushes its deadline forward; when a
                         deadline passes (the worker was SIGKILLed), the reaper hands the head out again.
- `lp:run:<task_id>`     the claim of the copy that is running a job, so a redelivered copy does not run twice.

The webhook runs INGEST (one round trip for a whole batch). A worker runs CLAIM (through its ledger:
`shared/scripts/ledger_claim.lua`) before the pipeline and COMPLETE
after it (results: `shared.redis_scripts.ScriptResult`); COMPLETE pops the head and hands the next entry to its
queue: the "mailbox" (actor) pattern,which keeps order per conversation and runs conversations in parallel.
"""

from __future__ import annotations

from shared.redis_scripts import ScriptName, lua_source

SEEN_PREFIX = "lp:seen:"
INBOX_PREFIX = "lp:inbox:"
LEASES_KEY = "lp:leases"
RUN_PREFIX = "lp:run:"

# The scripts, from shared/scripts/*.lua (each file names its KEYS, ARGV and results; see shared/redis_scripts.py).
INGEST = lua_source(ScriptName.INGEST)
CLAIM = lua_source(ScriptName.CLAIM)
RENEW = lua_source(ScriptName.RENEW)
DEFER = lua_source(ScriptName.DEFER)
COMPLETE = lua_source(ScriptName.COMPLETE)
REAP = lua_source(ScriptName.REAP)
RELEASE_LOST = lua_source(ScriptName.RELEASE_LOST)


def seen_key(ref: str) -> str:
    """The dedupe marker of the message whose ref (`shared.ledger.message_ref`) is `ref`."""
    return SEEN_PREFIX + ref


def inbox_key(conversation: str) -> str:
    return INBOX_PREFIX + conversation


def run_key(task_id: str) -> str:
    return RUN_PREFIX + task_id
