"""Put a job back into its conversation's mailbox (dead-letter replay), bypassing the inbound dedupe marker."""

from __future__ import annotations

import time
from typing import Any

import orjson
import redis

from shared import mailbox
from shared.celery_protocol import build_task_message, new_task_id
from shared.jobs import TASK_FOR_QUEUE, queue_for_message
from shared.ledger import ledger_key
from shared.logging import correlation_id


def requeue_job(client: redis.Redis, payload: dict[str, Any], lease_seconds: int, ledger_ttl_seconds: int) -> str:
    """Returns the new task id. The job keeps its ledger (`ref`), so parts already sent are not sent again while
    the ledger lives (MESSAGE_LEDGER_TTL_SECONDS); a record without a ref (an older one) gets a new ledger."""
    task_id = new_task_id()
    queue = queue_for_message(payload["message"])
    # A replay is a new receipt: its deadline (and staleness) counts from now, or a job that failed at its
    # deadline would be given up again before it even ran.
    job = {key: value for key, value in payload.items() if key != "ref"} | {
        "job_id": task_id,
        "received_at": time.time(),
    }
    ref = str(payload.get("ref") or task_id)
    envelope = build_task_message(
        TASK_FOR_QUEUE[queue].value,
        task_id,
        queue.value,
        [ref],
        f"<replay {payload['message_type']} {correlation_id(str(payload['message_id']))}>",
    )
    script = client.register_script(mailbox.INGEST)
    script(
        keys=[
            mailbox.LEASES_KEY,
            mailbox.seen_key(f"replay:{task_id}"),
            mailbox.inbox_key(payload["conversation"]),
            ledger_key(ref),
        ],
        args=[
            int(time.time() * 1000),
            lease_seconds * 1000,
            3600,
            ledger_ttl_seconds,
            task_id,
            queue.value,
            envelope,
            payload["conversation"],
            orjson.dumps(job),
        ],
    )
    return task_id
