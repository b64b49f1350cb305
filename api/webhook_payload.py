"""Walk a webhook body: every entry, every change, every message and status (Meta batches up to 1000).

A signed body may still hold items of odd shapes (a change that is not an object, a `from` that is a list, a
message nested hundreds of levels deep). Each item is judged on its own: a malformed one is skipped and reported
by its position, so the valid items of the same batch are still queued; an error nobody foresaw is recorded as a
failure of that item (the webhook then answers 503 so Meta redelivers, see docs/guarantees.md). Nothing here raises.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError

from shared import callback_data
from shared.amendments import amended_message_id
from shared.celery_protocol import build_task_message, new_task_id
from shared.handoff import ECHO_MESSAGE_TYPE, ECHOES_FIELD
from shared.identity import Sender
from shared.jobs import TASK_FOR_QUEUE, InboundJob, queue_for_message
from shared.ledger import DEVELOPMENT_MESSAGE_KEY, message_ref, outgoing_key
from shared.logging import correlation_id

# Meta's deepest message objects (interactive replies, contacts cards) nest about 6 levels. The bound keeps the
# envelope encodable (orjson refuses more than 254 levels) and the workers' walks short.
MAX_MESSAGE_DEPTH = 32


@dataclass(slots=True)
class PreparedJob:
    """A message ready for the ingest script: its envelope and ledger are built before the Redis round trip.

    The envelope's only argument is `ref` (the keyed hash of the message id): the job itself (`job`, JSON of
    shared.jobs.InboundJob) goes into the message's ledger, so Celery's logs and Flower never see it."""

    ref: str
    conversation: str
    task_id: str
    queue: str
    envelope: bytes
    correlation_id: str  # hashed message id for logs and monitoring (computed once, here)
    job: bytes = b"{}"
    message_id: str = ""  # in memory only: never part of a key, an argument or a log line
    sender: Sender | None = None
    fields: dict[str, Any] = field(default_factory=dict)  # `job` before encoding
    # An edit or revoke: the ref of the message it changes (decided before INGEST: api/ingest.py).
    amends: str = ""

    def move_to(self, conversation: str) -> None:
        """The sender's conversation as resolved by the ingestor (api/identity_links.py), when it is not the
        candidate this job was built with: the ledger's job is re-encoded (the envelope carries only the ref)."""
        if conversation == self.conversation:
            return
        self.conversation = conversation
        self.fields["conversation"] = conversation
        self.job = orjson.dumps(self.fields)


@dataclass(slots=True)
class FailedStatus:
    message_id_hash: str
    codes: list[int]


# Meta's statuses of a business's message (https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/
# components#statuses-object); `played` is a voice note's. Anything else is counted as "other" and not recorded.
KNOWN_STATUSES = frozenset({"sent", "delivered", "read", "played", "failed"})


@dataclass(frozen=True, slots=True)
class TrackedStatus:
    """A status of one of our reply parts: its `biz_opaque_callback_data` named the part's send record
    (shared/callback_data.py). `at_ms` is Meta's timestamp (epoch ms; our receipt when missing), `code` the first
    error code of a `failed` status ("" none), `wamid` Meta's id of our message (never logged)."""

    ref: str
    part: str
    status: str
    at_ms: int
    wamid: str
    code: str
    outgoing: str = ""  # where the message is recorded by its wamid (shared.ledger.outgoing_key), "" without one


@dataclass(frozen=True, slots=True)
class ItemProblem:
    """Where a skipped or failed item sits in the body, and why: positions and fixed codes only, never content."""

    entry: int
    change: int | None
    item: str  # "entry", "change", "messages", "message_echoes", "statuses"
    index: int | None
    reason: str  # a fixed code, e.g. "from_not_a_string", "schema", or the exception type of a failure
    fields: tuple[str, ...] = ()  # for "schema": the job fields the schema refused


@dataclass(frozen=True, slots=True)
class PreferenceUpdate:
    """A user's marketing-preference change (`user_preferences` webhook field): recorded, never answered.
    `person` is the identity digest (shared/identity.py), never the phone number or user id."""

    person: str
    category: str
    value: str
    timestamp: int


@dataclass(slots=True)
class WebhookContents:
    jobs: list[PreparedJob] = field(default_factory=list)
    statuses: int = 0
    # (status, error code or "") of every status, for the metrics; `tracked` are those of our reply parts.
    status_labels: list[tuple[str, str]] = field(default_factory=list)
    tracked: list[TrackedStatus] = field(default_factory=list)
    # Conversations a person wrote in from the WhatsApp Business app (smb_message_echoes): pause them now.
    # Echo jobs whose conversations pause before anything is queued (resolved to their conversation first).
    pauses: list[PreparedJob] = field(default_factory=list)
    failed_statuses: list[FailedStatus] = field(default_factory=list)
    preferences: list[PreferenceUpdate] = field(default_factory=list)
    ignored: int = 0
    foreign_number: int = 0
    skipped: list[ItemProblem] = field(default_factory=list)  # malformed: dropped on purpose, answered 200
    failures: list[ItemProblem] = field(default_factory=list)  # unforeseen errors: answered 503


class Malformed(Exception):
    """An item of a shape we can name; `reason` is a fixed code, safe to log."""

    def __init__(self, reason: str, fields: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.fields = fields


def depth_exceeds(value: Any, limit: int) -> bool:
    """Whether lists/objects nest deeper than `limit` levels (`value` itself is level 1). Level by level, without
    recursion, whatever the input; a typical message has 2-3 levels and costs well under a microsecond."""
    level, depth = [value], 1
    while level:
        if depth > limit:
            return True
        deeper = []
        for node in level:
            for child in node.values() if isinstance(node, dict) else node:
                if isinstance(child, dict | list):
                    deeper.append(child)
        level, depth = deeper, depth + 1
    return False


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _sender_of(
    message: dict[str, Any], contact: dict[str, Any], key: bytes
) -> tuple[Sender, str | None, str | None, str | None, str | None]:
    """(sender, `to`, `recipient`, group id, member digest). Since 2026 a user with a username may have no `from`,
    only the business-scoped user id (BSUID), or both; replies go to the phone number when known (Meta's advice:
    then the phone keeps appearing in webhooks), else to the BSUID as `recipient`
    (https://developers.facebook.com/docs/whatsapp/cloud-api/business-scoped-user-ids). A group message is answered
    in the group: `to` is the group id."""
    for name in ("from", "from_user_id", "group_id"):
        if name in message and not isinstance(message[name], str | None):
            raise Malformed(f"{name}_not_a_string")
    wa_id = _text(message.get("from")) or _text(contact.get("wa_id"))
    user_id = _text(message.get("from_user_id")) or _text(contact.get("user_id"))
    group_id = _text(message.get("group_id"))
    if not (wa_id or user_id):
        raise Malformed("no_sender")
    sender = Sender.of(wa_id, user_id, group_id, key)
    system = message.get("system")
    if message.get("type") == "system" and isinstance(system, dict) and system.get("type") == "user_changed_number":
        # The person's new number (and new BSUID, which Meta regenerates with it) continue this conversation.
        new_phone = _text(system.get("wa_id")) or _text(system.get("new_wa_id"))
        sender = sender.joined_by(new_phone, _text(system.get("user_id")) or _text(system.get("new_user_id")), key)
    if group_id:
        return sender, group_id, None, group_id, Sender.of(wa_id, user_id, None, key).links[0]
    return sender, wa_id, None if wa_id else user_id, None, None


def _contacts_by_id(value: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Contacts by wa_id and by user id; key "" holds the only contact, for a message without `from`."""
    raw = value.get("contacts")
    listed = [c for c in raw if isinstance(c, dict)] if isinstance(raw, list) else []
    contacts = {c[key]: c for c in listed for key in ("wa_id", "user_id") if isinstance(c.get(key), str)}
    if len(listed) == 1:
        contacts[""] = listed[0]
    return contacts


def _prepare(
    message: Any, contacts: dict[str, dict[str, Any]], phone_number_id: str, now: float, message_key: bytes
) -> PreparedJob:
    """The job of one message, validated by the workers' own schema (`InboundJob`); raises Malformed."""
    if not isinstance(message, dict):
        raise Malformed("not_an_object")
    message_id, message_type = _text(message.get("id")), _text(message.get("type"))
    if message_id is None:
        raise Malformed("no_id")
    if message_type is None:
        raise Malformed("no_type")
    if depth_exceeds(message, MAX_MESSAGE_DEPTH):
        raise Malformed("too_deep")
    sender_id = _text(message.get("from")) or _text(message.get("from_user_id")) or ""
    contact = contacts.get(sender_id) or contacts.get("") or {}
    sender, to, recipient, group_id, member = _sender_of(message, contact, message_key)
    profile = contact.get("profile")
    name = profile.get("name") if isinstance(profile, dict) else None
    address = _Address(sender, to, recipient, group_id, member)
    return _prepared(message, message_id, message_type, address, name, phone_number_id, now, message_key)


@dataclass(frozen=True, slots=True)
class _Address:
    """Who the job is about and where its answer goes (see `_sender_of`)."""

    sender: Sender
    to: str | None
    recipient: str | None
    group_id: str | None = None
    member: str | None = None


def _prepare_echo(echo: Any, phone_number_id: str, now: float, message_key: bytes) -> PreparedJob:
    """A person's message sent from the WhatsApp Business app (coexistence), echoed by Meta: a job of type
    ECHO_MESSAGE_TYPE in the *user's* conversation (`to`, else `to_user_id`), so the worker stores the words as the
    business's turn in order with the user's messages (docs/handoff.md). Raises Malformed."""
    if not isinstance(echo, dict):
        raise Malformed("not_an_object")
    message_id = _text(echo.get("id"))
    if message_id is None:
        raise Malformed("no_id")
    if depth_exceeds(echo, MAX_MESSAGE_DEPTH):
        raise Malformed("too_deep")
    to, user_id = _text(echo.get("to")), _text(echo.get("to_user_id"))
    if to is None and user_id is None:
        raise Malformed("no_recipient")
    # The user's own identity (phone and/or BSUID), so the echo joins their conversation however it is keyed.
    address = _Address(Sender.of(to, user_id, None, message_key), to, None if to else user_id)
    return _prepared(echo, message_id, ECHO_MESSAGE_TYPE, address, None, phone_number_id, now, message_key)


def _prepared(
    message: dict[str, Any],
    message_id: str,
    message_type: str,
    address: _Address,
    name: Any,
    phone_number_id: str,
    now: float,
    message_key: bytes,
) -> PreparedJob:
    conversation = address.sender.candidate
    task_id = new_task_id()
    job = {
        "job_id": task_id,
        "message_id": message_id,
        "message_type": message_type,
        "conversation": conversation,
        "phone_number_id": phone_number_id,
        "received_at": now,
        "message": message,
        # The display name is decoration: a name that is not a string is dropped, and the user still answered.
        "contact_name": name if isinstance(name, str) else None,
        "to": address.to,
        "recipient": address.recipient,
        "group_id": address.group_id,
        "member": address.member,
    }
    try:
        InboundJob.model_validate(job)
    except ValidationError as exc:
        raise Malformed("schema", tuple(sorted({str(err["loc"][0]) for err in exc.errors() if err["loc"]}))) from None
    queue = queue_for_message(message)
    cid = correlation_id(message_id)
    ref = message_ref(message_id, message_key)
    try:
        ledger_job = orjson.dumps(job)
    except orjson.JSONEncodeError:
        raise Malformed("unencodable") from None
    envelope = build_task_message(
        TASK_FOR_QUEUE[queue].value, task_id, queue.value, [ref], f"<{message_type[:64]} {cid}>"
    )
    prepared = PreparedJob(
        ref, conversation, task_id, queue.value, envelope, cid, ledger_job, message_id, address.sender, job
    )
    if (original := amended_message_id(message)) is not None:
        prepared.amends = message_ref(original, message_key)
    return prepared


def _status(status: Any, out: WebhookContents, now: float, message_key: bytes) -> None:
    if not isinstance(status, dict):
        raise Malformed("not_an_object")
    out.statuses += 1
    name = status.get("status")
    name = name if isinstance(name, str) and name in KNOWN_STATUSES else "other"
    code = ""
    if name == "failed":
        errors = status.get("errors")
        listed = errors if isinstance(errors, list) else ()
        codes = [c for c in (e.get("code") for e in listed if isinstance(e, dict)) if isinstance(c, int)]
        out.failed_statuses.append(FailedStatus(correlation_id(str(status.get("id", ""))), codes))
        code = str(codes[0]) if codes else ""
    out.status_labels.append((name, code))
    ours = callback_data.decode(status.get("biz_opaque_callback_data"))
    if ours is None or name == "other":
        return  # not one of our reply parts (or not a status we act on): counted, no Redis work
    timestamp = status.get("timestamp")
    at_ms = int(timestamp) * 1000 if isinstance(timestamp, str) and timestamp.isdigit() else int(now * 1000)
    wamid = status.get("id")
    wamid = wamid if isinstance(wamid, str) and len(wamid) <= 256 else ""
    outgoing = outgoing_key(wamid, message_key) if wamid else ""
    out.tracked.append(TrackedStatus(ours[0], ours[1], name, at_ms, wamid, code, outgoing))


def _items(value: dict[str, Any], key: str, e: int, c: int, out: WebhookContents) -> list[Any]:
    items = value.get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        out.skipped.append(ItemProblem(e, c, key, None, "not_a_list"))
        return []
    return items


class _Item:
    """`with _Item(out, ...):` runs one item's step: a Malformed item is skipped, any other error is recorded as
    that item's failure; neither propagates, so the rest of the batch still counts."""

    __slots__ = ("_out", "_where")

    def __init__(self, out: WebhookContents, entry: int, change: int | None, item: str, index: int | None) -> None:
        self._out = out
        self._where = (entry, change, item, index)

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _tb: object) -> bool:
        if exc is None:
            return False
        if isinstance(exc, Malformed):
            self._out.skipped.append(ItemProblem(*self._where, exc.reason, exc.fields))
            return True
        if isinstance(exc, Exception):  # one unforeseen item must not take its batch down
            assert kind is not None
            self._out.failures.append(ItemProblem(*self._where, kind.__name__))
            return True
        return False  # KeyboardInterrupt, CancelledError, ...: not ours to swallow


def _change(
    change: Any, e: int, c: int, our_phone_number_id: str, now: float, out: WebhookContents, message_key: bytes
) -> None:
    if not isinstance(change, dict):
        raise Malformed("not_an_object")
    field_name = change.get("field")
    if field_name == "user_preferences":
        _preferences(change.get("value"), e, c, our_phone_number_id, out, message_key)
        return
    if field_name not in ("messages", ECHOES_FIELD):
        out.ignored += 1  # account, template, call ... updates: not ours to act on
        return
    value = change.get("value")
    if not isinstance(value, dict):
        raise Malformed("value_not_an_object")
    metadata = value.get("metadata")
    number = metadata.get("phone_number_id") if isinstance(metadata, dict) else None
    if our_phone_number_id and number != our_phone_number_id:
        out.foreign_number += 1
        return
    if not isinstance(number, str) or not number:
        raise Malformed("no_phone_number_id")
    if field_name == ECHOES_FIELD:
        for index, echo in enumerate(_items(value, "message_echoes", e, c, out)):
            with _Item(out, e, c, "message_echoes", index):
                job = _prepare_echo(echo, number, now, message_key)
                out.jobs.append(job)
                out.pauses.append(job)
        return
    messages = _items(value, "messages", e, c, out)
    contacts = _contacts_by_id(value) if messages else {}
    for index, message in enumerate(messages):
        with _Item(out, e, c, "messages", index):
            out.jobs.append(_prepare(message, contacts, number, now, message_key))
    for index, status in enumerate(_items(value, "statuses", e, c, out)):
        with _Item(out, e, c, "statuses", index):
            _status(status, out, now, message_key)


def _preference(item: Any, key: bytes) -> PreferenceUpdate:
    if not isinstance(item, dict):
        raise Malformed("not_an_object")
    user_id, wa_id = _text(item.get("user_id")), _text(item.get("wa_id"))
    category, value, timestamp = _text(item.get("category")), _text(item.get("value")), item.get("timestamp")
    if not (user_id or wa_id):
        raise Malformed("no_sender")
    if category is None or value is None:
        raise Malformed("no_preference")
    person = Sender.of(wa_id, user_id, None, key).links[0]
    return PreferenceUpdate(person, category[:64], value[:64], timestamp if isinstance(timestamp, int) else 0)


def _preferences(value: Any, e: int, c: int, ours: str, out: WebhookContents, key: bytes) -> None:
    """Meta's marketing-preference updates (stop, resume, signup), one per item: recorded by the webhook."""
    if not isinstance(value, dict):
        raise Malformed("value_not_an_object")
    metadata = value.get("metadata")
    if ours and (metadata.get("phone_number_id") if isinstance(metadata, dict) else None) != ours:
        out.foreign_number += 1
        return
    for index, item in enumerate(_items(value, "user_preferences", e, c, out)):
        with _Item(out, e, c, "user_preferences", index):
            out.preferences.append(_preference(item, key))


def parse_webhook(
    payload: Any, our_phone_number_id: str, message_key: bytes = DEVELOPMENT_MESSAGE_KEY
) -> WebhookContents:
    """Everything we must act on, plus the items skipped or failed with their positions. Never raises.
    `message_key` (`Settings.message_hashing_key()`) hashes message ids into refs, and phone numbers and user ids
    into the digests of conversation ids (shared/identity.py)."""
    out = WebhookContents()
    entries = payload.get("entry") if isinstance(payload, dict) else None
    if not isinstance(entries, list):
        out.ignored += 1
        return out
    now = time.time()
    for e, entry in enumerate(entries):
        changes = entry.get("changes") if isinstance(entry, dict) else None
        if not isinstance(changes, list):
            out.skipped.append(ItemProblem(e, None, "entry", None, "no_changes_list"))
            continue
        for c, change in enumerate(changes):
            with _Item(out, e, c, "change", None):
                _change(change, e, c, our_phone_number_id, now, out, message_key)
    return out
