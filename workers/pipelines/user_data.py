"""Everything stored about one user, found by their conversation key: read it out (export) or erase it (delete).

Where a user's data lives in Redis (see shared/ledger.py, shared/mailbox.py):

| key                              | what                                                   | found by                 |
|----------------------------------|--------------------------------------------------------|--------------------------|
| `lp:mem:<conv>`                  | conversation memory (their words, our answers)         | the conversation key     |
| `lp:conv:<conv>`                 | conversation state (opt-out, pause, window)            | the conversation key     |
| `lp:stale-notice:<conv>`         | "your message arrived late" notice marker              | the conversation key     |
| `lp:undelivered:<conv>`          | answers kept for the user's next message, with the     | the conversation key     |
|                                  | start of the question each answered                    |                          |
| `lp:inbox:<conv>`, `lp:leases`   | queued jobs' Celery envelopes (refs only)              | the conversation key     |
| `lp:msg:<ref>`                   | each message's ledger: Meta's message (text, name,     | a SCAN of `lp:msg:*`,    |
|                                  | ids), transcripts, cached answers, send receipts       | its `conv` field         |
| `lp:voice:<digest>:*`            | a message's voice reply audio                          | its message id (ledger)  |
| `lp:dlq`                         | dead letters (the job, with the message)               | `conversation` / `ref`   |
| `lp:ul:<hash>:log`, `:notice`    | the per-user message window (message hashes)           | the conversation's hash  |
| `lp:who:<digest>`                | the person's identity links (keyed digests)            | a SCAN, its value        |
| `lp:prefs:<digest>`              | marketing preferences (Meta's `user_preferences`)      | the link's digest        |

What remains after an erasure, and why: the dedupe markers `lp:seen:<ref>` (a keyed hash of a message id, no
content; erasing them would let Meta's redelivery of an old message be answered again) and Celery queue entries
(a ref only: the job they name is gone, so a worker skips them), and the shared Groq limiter's windows
(`lp:rl:*`: a hash of the conversation among the calls of the last minute, gone with the window), and the records
of the bot's sent messages by Meta's id (`lp:out:<keyed hash of the wamid>` -> a ledger ref and a part name, gone
with the ledgers' TTL; the ledger they name is erased). None holds a
phone number, a user id, a name or a word of the user's. The ledger scan reads every message ledger once:
O(messages kept, MESSAGE_LEDGER_TTL_SECONDS); fine for a request a user makes rarely, not for a hot path.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis

from shared import mailbox
from shared.dead_letters import DLQ_KEY
from shared.identity import PREFERENCES_PREFIX, WHO_PREFIX
from shared.ledger import LEDGER_PREFIX, conversation_state_key, ledger_key
from shared.undelivered import undelivered_key
from workers.clients.user_rate_limit import window_keys
from workers.delivery.memory import MEMORY_PREFIX
from workers.pipelines.staleness import NOTICE_PREFIX
from workers.voice.cache import VOICE_PREFIX, voice_cache_prefix

_SCAN_COUNT = 1000


@dataclass(slots=True)
class Erased:
    """What an erasure removed (counts only: the report itself must not hold personal data)."""

    keys: int = 0
    messages: int = 0
    dead_letters: int = 0
    refs: set[str] = field(default_factory=set)

    def summary(self) -> dict[str, int]:
        return {"keys": self.keys, "messages": self.messages, "dead_letters": self.dead_letters}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _message_ledgers(client: redis.Redis, conversation: str) -> dict[str, dict[str, str]]:
    """ref -> decoded ledger fields, for every message ledger of `conversation`."""
    found: dict[str, dict[str, str]] = {}
    for batch in _scan_batches(client, LEDGER_PREFIX + "*"):
        pipe = client.pipeline(transaction=False)
        for key in batch:
            pipe.hget(key, "conv")
        owners = pipe.execute()
        mine = [key for key, owner in zip(batch, owners, strict=True) if owner and _text(owner) == conversation]
        pipe = client.pipeline(transaction=False)
        for key in mine:
            pipe.hgetall(key)
        for key, fields in zip(mine, pipe.execute(), strict=True):
            if fields:
                found[key.removeprefix(LEDGER_PREFIX)] = {_text(k): _text(v) for k, v in fields.items()}
    return found


def _scan_batches(client: redis.Redis, pattern: str) -> list[list[str]]:
    batches: list[list[str]] = []
    cursor: int = 0
    while True:
        cursor, keys = client.scan(cursor=cursor, match=pattern, count=_SCAN_COUNT)
        if keys:
            batches.append([_text(key) for key in keys])
        if cursor == 0:
            return batches


def _dead_letters_of(client: redis.Redis, conversation: str, refs: set[str]) -> list[tuple[bytes, dict[str, Any]]]:
    entries: list[tuple[bytes, dict[str, Any]]] = []
    for raw in client.lrange(DLQ_KEY, 0, -1):
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        payload = record.get("payload") if isinstance(record, dict) else None
        if not isinstance(payload, dict):
            continue
        if payload.get("conversation") == conversation or payload.get("ref") in refs:
            entries.append((bytes(raw), record))  # type: ignore[arg-type]  # stubs say str; bytes arrive
    return entries


def _readable(fields: dict[str, str]) -> dict[str, Any]:
    """A ledger's fields with its JSON values (the job, stage results) parsed."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if name == "job" or (name.startswith("stage:") and not name.endswith(":error")):
            try:
                out[name] = orjson.loads(value)
                continue
            except orjson.JSONDecodeError:
                pass
        out[name] = value
    return out


def collect(client: redis.Redis, conversation: str) -> dict[str, Any]:
    """Everything stored about `conversation` (a wa_id or business-scoped user id) as one JSON-able dict:
    memory, conversation state, every message's ledger (the message as Meta sent it, transcripts, cached answers,
    send receipts) and dead letters. Raises RedisError."""
    ledgers = _message_ledgers(client, conversation)
    memory = [orjson.loads(item) for item in client.lrange(MEMORY_PREFIX + conversation, 0, -1)]
    state = {_text(k): _text(v) for k, v in client.hgetall(conversation_state_key(conversation)).items()}
    kept = [orjson.loads(item) for item in client.lrange(undelivered_key(conversation), 0, -1)]
    return {
        "conversation": conversation,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "memory": memory,
        "conversation_state": state,
        "undelivered_answers": kept,
        "messages": [_readable(fields) | {"ref": ref} for ref, fields in sorted(ledgers.items())],
        "dead_letters": [record for _, record in _dead_letters_of(client, conversation, set(ledgers))],
    }


def erase(
    client: redis.Redis,
    conversation: str,
    voice_secret: str,
    *,
    keep_ref: str = "",
    received_up_to_ms: int | None = None,
) -> Erased:
    """Erase everything stored about `conversation`. From inside a job (the user's `delete`): `keep_ref` is that
    job's own ledger (the job runner removes it when the job is done) and `received_up_to_ms` spares messages
    received after it (they are queued in the mailbox, which COMPLETE hands on). From the CLI (no job): everything,
    the mailbox and its lease included. Idempotent: a retried erasure removes what is left. Raises RedisError."""
    erased = Erased()
    in_job = bool(keep_ref)
    ledgers = _message_ledgers(client, conversation)
    doomed: list[str] = []
    voice_prefixes: set[str] = set()
    for ref, fields in ledgers.items():
        if ref == keep_ref:
            continue
        received = int(fields.get("received_ms") or 0)
        if received_up_to_ms is not None and received > received_up_to_ms:
            continue
        doomed.append(ledger_key(ref))
        erased.refs.add(ref)
        if prefix := _voice_prefix(fields, voice_secret):
            voice_prefixes.add(prefix)
    keys = [MEMORY_PREFIX + conversation, conversation_state_key(conversation), NOTICE_PREFIX + conversation]
    keys.append(undelivered_key(conversation))
    keys += window_keys(conversation)
    if not in_job:
        keys.append(mailbox.inbox_key(conversation))
        client.zrem(mailbox.LEASES_KEY, mailbox.inbox_key(conversation))
    keys += doomed + _voice_keys(client, voice_prefixes) + _identity_keys(client, conversation)
    erased.messages = len(erased.refs)
    erased.keys = int(client.delete(*keys))
    for raw, _ in _dead_letters_of(client, conversation, erased.refs | {keep_ref}):
        erased.dead_letters += int(client.lrem(DLQ_KEY, 0, raw))  # type: ignore[arg-type]  # bytes work
    return erased


def _identity_keys(client: redis.Redis, conversation: str) -> list[str]:
    """The person's identity links to this conversation (`lp:who:<digest>`, shared/identity.py) and their
    marketing preferences (`lp:prefs:<digest>`): digests, nothing readable, but they tie the person to the
    conversation, so an erasure removes them; the person's next message starts a new conversation."""
    found: list[str] = []
    for batch in _scan_batches(client, WHO_PREFIX + "*"):
        pipe = client.pipeline(transaction=False)
        for key in batch:
            pipe.get(key)
        for key, owner in zip(batch, pipe.execute(), strict=True):
            if owner is not None and _text(owner) == conversation:
                found += (key, PREFERENCES_PREFIX + key.removeprefix(WHO_PREFIX))
    return found


def _voice_prefix(fields: dict[str, str], voice_secret: str) -> str | None:
    try:
        message_id = orjson.loads(fields.get("job", "{}")).get("message_id")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return voice_cache_prefix(message_id, voice_secret) if isinstance(message_id, str) else None


def _voice_keys(client: redis.Redis, prefixes: set[str]) -> list[str]:
    """The voice cache entries under `prefixes`: one SCAN of the (short-lived) voice cache for all of them."""
    if not prefixes:
        return []
    return [
        key
        for batch in _scan_batches(client, VOICE_PREFIX + "*")
        for key in batch
        if key[: key.index(":", len(VOICE_PREFIX)) + 1] in prefixes
    ]
