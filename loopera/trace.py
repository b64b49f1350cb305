"""`loopera trace`: the story of one message, read from its ledger (shared/ledger.py), for operators.

Without `show_content` nothing personal is printed: the conversation and Meta's message ids appear as keyed
hashes, stage results that hold words (transcript, answer) as their length; `show_content` prints them in clear.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import orjson
import redis

from shared.jobs import InboundJob
from shared.ledger import LEDGER_PREFIX, message_ref
from shared.logging import conversation_ref, correlation_id

_REF = re.compile(r"^[0-9a-f]{32}$")
# Stage results that are verdicts, not words: safe to show.
_VERDICT_STAGES = frozenset({"staleness", "answer_mode", "user_limit"})
_SEND_FACTS = (":until", ":meta", ":at", ":gate", ":confirmed_by", ":unconfirmed")
# Meta's statuses of a reply part (shared/scripts/record_status.lua), in the order they normally arrive.
_STATUS_ORDER = ("sent", "delivered", "read", "played", "failed")
_AMENDS = {
    "instead": "edited before its answer went out; answered instead of it",
    "cancelled": "deleted before its answer went out; nothing answered",
    "after": "came after its answer (a correction, or its turn left memory)",
}
FOREIGN_KEY = (
    "correlation id unknown: this ledger was written under another MESSAGE_KEY_SECRET / APP_SECRET (a sandbox run "
    "generates its own); run trace with that process's settings to match its log lines"
)
_QUEUED = {"2": "handed to its queue at once", "1": "behind an earlier message of its conversation"}


def ref_for(message: str, key: bytes) -> str:
    """The ref of a message id; a 32-hex-digit argument already is one (as in dead letters and logs)."""
    return message if _REF.match(message) else message_ref(message, key)


def find_ref(client: redis.Redis, message_id: str) -> str | None:
    """The ref of the ledger whose job carries `message_id`, by reading every ledger: for a message id hashed with
    another key than this process's (a sandbox run generates its app secret per run). O(ledgers kept); None if
    none matches."""
    for key in client.scan_iter(match=LEDGER_PREFIX + "*", count=1000):
        raw: bytes | None = client.hget(key, "job")  # type: ignore[assignment]  # a sync client
        try:
            job = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            continue
        if isinstance(job, dict) and job.get("message_id") == message_id:
            name = key.decode() if isinstance(key, bytes) else str(key)
            return name.removeprefix(LEDGER_PREFIX)
    return None


def _ms(fields: dict[str, str], name: str) -> int | None:
    value = fields.get(name)
    return int(value) if value and value.lstrip("-").isdigit() else None


def _when(ms: int | None, origin: int | None) -> str:
    if ms is None:
        return "-"
    stamp = dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return f"{stamp} (+{(ms - origin) / 1000:.3f} s)" if origin is not None and ms != origin else stamp


def _stage_value(name: str, value: Any, show_content: bool) -> str:
    if show_content or name in _VERDICT_STAGES:
        text = value if isinstance(value, str) else orjson.dumps(value).decode()
        return repr(text) if len(text) <= 200 else repr(text[:200]) + "..."
    size = len(value) if isinstance(value, str) else len(orjson.dumps(value))
    return f"<{size} chars>"


def render(ref: str, fields: dict[str, str], key: bytes, show_content: bool = False) -> list[str]:
    """The lines `loopera trace` prints for a ledger's fields."""
    if not fields:
        return [f"no ledger for {ref[:12]} (never received, or older than MESSAGE_LEDGER_TTL_SECONDS)"]
    received = _ms(fields, "received_ms")
    lines = [f"message {ref[:12]}"]
    try:
        job: InboundJob | None = InboundJob.model_validate_json(fields.get("job", ""))
    except ValueError:
        job = None
    header, foreign_key = _job_lines(job, ref, key, show_content)
    lines += header
    lines.append(f"  received     {_when(received, None)}")
    lines.append(f"  queued       {_QUEUED.get(fields.get('queued', ''), 'unknown')}")
    runs = fields.get("runs", "0")
    lines.append(f"  claimed      {_when(_ms(fields, 'first_claimed_ms'), received)}; runs: {runs}")
    if runs != "1" and "claimed_ms" in fields:
        lines.append(f"  last claim   {_when(_ms(fields, 'claimed_ms'), received)}")
    lines.append(f"  attempts     {fields.get('attempts', '0')} failed")
    lines += _burst_lines(fields, received)
    stages = (f.removeprefix("stage:") for f in fields if f.startswith("stage:") and not f.endswith(":error"))
    for name in sorted(stages):
        record = orjson.loads(fields[f"stage:{name}"])
        value = _stage_value(name, record.get("v"), show_content)
        lines.append(
            f"  stage        {name}: {value}, {record.get('ms', '?')} ms, at {_when(record.get('at'), received)}"
        )
    for field in sorted(f for f in fields if f.startswith("stage:") and f.endswith(":error")):
        lines.append(f"  stage error  {field.removeprefix('stage:').removesuffix(':error')}: {fields[field]}")
    lines += _send_lines(fields, None if foreign_key else key, received, show_content)
    lines += _amendment_lines(fields, received)
    lines.append(f"  memory       {'written ' + _when(_ms(fields, 'memory'), received) if 'memory' in fields else '-'}")
    flags = [name.removeprefix("flag:") for name in fields if name.startswith("flag:")]
    if flags:
        lines.append(f"  flags        {', '.join(sorted(flags))}")
    if fields.get("outcome", "done") != "done":
        lines.append(f"  last outcome {fields['outcome']}")
    return lines


def _job_lines(job: InboundJob | None, ref: str, key: bytes, show_content: bool) -> tuple[list[str], bool]:
    """Who sent the message and the correlation id of its log lines; True when the ledger was written under another
    key than ours (found by reading every ledger: a sandbox run generates its own APP_SECRET), so that no id we hash
    matches its log lines and none is printed."""
    if job is None:
        return [], False
    foreign_key = ref != job.job_id and message_ref(job.message_id, key) != ref
    who = job.conversation if show_content else conversation_ref(job.conversation)
    lines = [f"  type         {job.message_type} from conversation {who}"]
    lines.append(f"  logs         {FOREIGN_KEY if foreign_key else 'correlation_id ' + correlation_id(job.message_id)}")
    if show_content:
        lines.append(f"  message id   {job.message_id}")
        lines.append(f"  contact      {job.contact_name or '-'}")
        lines.append(f"  content      {orjson.dumps(job.message).decode()[:500]}")
    return lines, foreign_key


def _send_lines(fields: dict[str, str], key: bytes | None, received: int | None, show_content: bool) -> list[str]:
    """Each reply part's send state and Meta's statuses of it."""
    lines = []
    for part in sorted(
        f.removeprefix("send:") for f in fields if f.startswith("send:") and not f.endswith(_SEND_FACTS)
    ):
        lines.append("  " + _send_line(part, fields, key, received, show_content))
        if history := _status_history(part, fields, received):
            lines.append(f"  status       {part}: {history}")
    return lines


def _status_history(part: str, fields: dict[str, str], received: int | None) -> str:
    """Meta's statuses of one part as `sent <when>, delivered <when>, ...`; a failure with its error code."""
    seen = []
    for status in _STATUS_ORDER:
        at = _ms(fields, f"status:{part}:{status}")
        if at is None:
            continue
        code = fields.get(f"status:{part}:error") if status == "failed" else None
        seen.append(f"{status}{f' ({code})' if code else ''} {_when(at, received)}")
    return ", ".join(seen)


def _burst_lines(fields: dict[str, str], received: int | None) -> list[str]:
    """Burst merging (workers/pipelines/burst.py): which message answered this one, or which messages this one
    answers (their refs, in arrival order; trace each by its ref)."""
    lines = []
    into = fields.get("flag:merged")
    if into:
        lines.append(f"  merged       into {into[:12]} at {_when(_ms(fields, 'merged_ms'), received)}: answered there")
    if "burst" in fields:
        try:
            refs = [str(ref)[:12] for ref in orjson.loads(fields["burst"])]
        except orjson.JSONDecodeError:
            refs = []
        closed = _when(_ms(fields, "burst_closed_ms"), received)
        lines.append(f"  burst        answers {len(refs)} messages ({', '.join(refs)}), closed {closed}")
    return lines


def _amendment_lines(fields: dict[str, str], received: int | None) -> list[str]:
    """What happened around this message after it was sent: reactions to its answer, edits and deletions."""
    lines = []
    for part in sorted(
        f.removeprefix("feedback:") for f in fields if f.startswith("feedback:") and not f.endswith(":at")
    ):
        at = _when(_ms(fields, f"feedback:{part}:at"), received)
        lines.append(f"  feedback     {part}: {fields[f'feedback:{part}']} (the user's reaction, {at})")
    if "amend" in fields:
        what = _AMENDS.get(fields["amend"], fields["amend"])
        lines.append(f"  amends       message {fields.get('amend_of', '?')[:12]}: {what}")
    if "superseded_by" in fields:
        lines.append(f"  edited       answered as edit {fields['superseded_by'][:12]}")
    return lines


def _send_line(part: str, fields: dict[str, str], key: bytes | None, received: int | None, show_content: bool) -> str:
    """One reply part's send state; `key` None: the ledger was written under another key (no ref of Meta's id)."""
    state = fields[f"send:{part}"]
    if state == "done":
        meta = fields.get(f"send:{part}:meta", "")
        if show_content or not meta:
            shown = meta or "-"
        else:
            shown = f"ref {message_ref(meta, key)[:12]}" if key is not None else "ref unknown (another key)"
        by = fields.get(f"send:{part}:confirmed_by")
        how = f" (recorded from Meta's `{by}` status)" if by else ""
        return f"send         {part}: sent {_when(_ms(fields, f'send:{part}:at'), received)}, Meta id {shown}{how}"
    if state == "blocked":
        return f"send         {part}: blocked by {fields.get(f'send:{part}:gate', '?')}"
    return f"send         {part}: {state} (not confirmed by Meta)"
