"""Walk a webhook body: every entry, every change, every message and status (Meta batches up to 1000)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from shared.celery_protocol import build_task_message, new_task_id
from shared.jobs import TASK_FOR_QUEUE, queue_for_message_type
from shared.ledger import DEVELOPMENT_MESSAGE_KEY, message_ref
from shared.logging import correlation_id


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


@dataclass(slots=True)
class FailedStatus:
    message_id_hash: str
    codes: list[int]


@dataclass(slots=True)
class WebhookContents:
    jobs: list[PreparedJob] = field(default_factory=list)
    statuses: int = 0
    failed_statuses: list[FailedStatus] = field(default_factory=list)
    ignored: int = 0
    foreign_number: int = 0
    malformed: int = 0


def _conversation_of(message: dict[str, Any], contact: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """(conversation key, `to`, `recipient`). Since April 2026 a user with a username may have no `from`:
    then the business-scoped user id is both the key and the `recipient` we reply to."""
    wa_id = message.get("from") or contact.get("wa_id")
    if isinstance(wa_id, str) and wa_id:
        return wa_id, wa_id, None
    user_id = message.get("from_user_id") or contact.get("user_id")
    if isinstance(user_id, str) and user_id:
        return user_id, None, user_id
    return "", None, None


def _contacts_by_id(value: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Contacts by wa_id and by user id; key "" holds the only contact, for a message without `from`."""
    raw = value.get("contacts")
    listed = [c for c in raw if isinstance(c, dict)] if isinstance(raw, list) else []
    contacts = {c[key]: c for c in listed for key in ("wa_id", "user_id") if isinstance(c.get(key), str)}
    if len(listed) == 1:
        contacts[""] = listed[0]
    return contacts


def _prepare(
    message: dict[str, Any],
    contacts: dict[str, dict[str, Any]],
    phone_number_id: str,
    now: float,
    out: WebhookContents,
    message_key: bytes,
) -> None:
    message_id = message.get("id")
    message_type = message.get("type")
    if not isinstance(message_id, str) or not message_id or not isinstance(message_type, str):
        out.malformed += 1
        return
    sender = message.get("from") or message.get("from_user_id") or ""
    contact = contacts.get(sender) or contacts.get("") or {}
    conversation, to, recipient = _conversation_of(message, contact)
    if not conversation:
        out.malformed += 1
        return
    profile = contact.get("profile")
    queue = queue_for_message_type(message_type)
    task_id = new_task_id()
    job = {
        "job_id": task_id,
        "message_id": message_id,
        "message_type": message_type,
        "conversation": conversation,
        "phone_number_id": phone_number_id,
        "received_at": now,
        "message": message,
        "contact_name": profile.get("name") if isinstance(profile, dict) else None,
        "to": to,
        "recipient": recipient,
    }
    cid = correlation_id(message_id)
    ref = message_ref(message_id, message_key)
    envelope = build_task_message(TASK_FOR_QUEUE[queue].value, task_id, queue.value, [ref], f"<{message_type} {cid}>")
    out.jobs.append(PreparedJob(ref, conversation, task_id, queue.value, envelope, cid, orjson.dumps(job)))


def _statuses(value: dict[str, Any], out: WebhookContents) -> None:
    for status in value.get("statuses") or ():
        if not isinstance(status, dict):
            continue
        out.statuses += 1
        if status.get("status") == "failed":
            codes = [e.get("code") for e in status.get("errors") or () if isinstance(e, dict)]
            out.failed_statuses.append(
                FailedStatus(correlation_id(str(status.get("id", ""))), [c for c in codes if isinstance(c, int)])
            )


def parse_webhook(
    payload: Any, our_phone_number_id: str, message_key: bytes = DEVELOPMENT_MESSAGE_KEY
) -> WebhookContents:
    """Everything we must act on; unknown shapes are counted as ignored, never raised (Meta would retry them).
    `message_key` hashes message ids into refs (`Settings.message_hashing_key()`)."""
    out = WebhookContents()
    if not isinstance(payload, dict) or not isinstance(payload.get("entry"), list):
        out.ignored += 1
        return out
    now = time.time()
    for entry in payload["entry"]:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else ():
            value = change.get("value") if isinstance(change, dict) else None
            if change.get("field") != "messages" or not isinstance(value, dict):
                out.ignored += 1
                continue
            metadata = value.get("metadata")
            number = metadata.get("phone_number_id") if isinstance(metadata, dict) else None
            if our_phone_number_id and number != our_phone_number_id:
                out.foreign_number += 1
                continue
            messages = value.get("messages")
            contacts = _contacts_by_id(value) if messages else {}
            for message in messages if isinstance(messages, list) else ():
                if isinstance(message, dict):
                    _prepare(message, contacts, str(number), now, out, message_key)
                else:
                    out.malformed += 1
            _statuses(value, out)
    return out
