"""Jobs put straight into a conversation's mailbox, exactly as the webhook's ingest script leaves them, for worker
tests that do not need the API (or that queue what today's API would refuse, e.g. another version's payload)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
import redis

from shared import mailbox
from shared.celery_protocol import build_task_message
from shared.jobs import InboundJob, TaskName
from shared.ledger import ledger_key
from tests.fakes.graph_fake import PHONE_NUMBER_ID


def inbound_job(message: dict[str, Any], conversation: str = "u:abc", **fields: Any) -> InboundJob:
    """The worker's job for Meta's `message` object (its `type` and `id`, else "wamid.IN"), received now."""
    values: dict[str, Any] = {
        "job_id": "t1",
        "message_id": str(message.get("id", "wamid.IN")),
        "message_type": str(message["type"]),
        "conversation": conversation,
        "phone_number_id": PHONE_NUMBER_ID,
        "received_at": time.time(),
        "message": message,
        "to": "15550001111",
    }
    return InboundJob(**(values | fields))


def text_job(user: str, text: str) -> dict[str, Any]:
    message = {
        "from": user,
        "id": f"wamid.{uuid.uuid4().hex}",
        "timestamp": str(int(time.time())),
        "type": "text",
        "text": {"body": text},
    }
    return {
        "job_id": str(uuid.uuid4()),
        "message_id": message["id"],
        "message_type": "text",
        "conversation": user,
        "phone_number_id": PHONE_NUMBER_ID,
        "received_at": time.time(),
        "message": message,
        "contact_name": "Test User",
        "to": user,
        "recipient": None,
    }


def ingest(client: redis.Redis, job: dict[str, Any], lease_seconds: int) -> None:
    """Queue a text-pool job through the ingest script (dedupe marker, ledger, mailbox, dispatch), as the webhook
    does, but with the whole job as the task's argument, as an API from before the ledger queued it (its ledger ref
    is then its job id: workers/delivery/ledger_book.adopt)."""
    envelope = build_task_message(TaskName.TEXT.value, job["job_id"], "text", [job], "<text>")
    ref = job["job_id"]
    client.register_script(mailbox.INGEST)(
        keys=[mailbox.LEASES_KEY, mailbox.seen_key(ref), mailbox.inbox_key(job["conversation"]), ledger_key(ref)],
        args=[
            int(time.time() * 1000),
            lease_seconds * 1000,
            3600,
            3600,
            job["job_id"],
            "text",
            envelope,
            job["conversation"],
            orjson.dumps(job),
        ],
    )
