"""Celery `task-sent` events for jobs the API enqueues without Celery.

Flower learns about a task from events. Celery's producer sends `task-sent` when `task_send_sent_event` is on, but
the API pushes hand-built envelopes (celery_protocol.py), so it announces them itself: the same event, published
the way kombu's Redis transport publishes to the `celeryev` fanout exchange (PUBLISH on `/<db>.celeryev/task.sent`,
with `fanout_prefix` and `fanout_patterns` on, Celery's defaults). Flower then lists a job as queued before a
worker picks it up. Events are monitoring only: a lost one loses nothing.

Verdict against Flower's own broker view (`python -m bench.flower_view`, docs/performance.md#flower-task-sent-events):
the broker view reads queue lengths straight from Redis and needs no event, but shows a count per queue; these
events make Flower list each queued job (id, queue, redacted arguments) before a worker takes it, for about 7 %
more API CPU per webhook. We keep them, on by default; ANNOUNCE_TASK_SENT_EVENTS=false leaves the broker view.
The event format is checked against Celery's own EventReceiver (tests/integration/test_flower_events.py).
"""

from __future__ import annotations

import base64
import os
import socket
import time
import uuid

import orjson

EXCHANGE = "celeryev"
HOSTNAME = f"loopera-api@{socket.gethostname()}"


def topic(db: int, event_type: str = "task-sent") -> str:
    return f"/{db}.{EXCHANGE}/{event_type.replace('-', '.')}"


def task_sent(task_id: str, task_name: str, queue: str, argsrepr: str, now: float | None = None) -> bytes:
    """The kombu message carrying a `task-sent` event, as Celery's EventDispatcher would publish it."""
    event = {
        "hostname": HOSTNAME,
        "utcoffset": -time.timezone // 3600,
        "pid": os.getpid(),
        "clock": 0,
        "uuid": task_id,
        "root_id": task_id,
        "parent_id": None,
        "name": task_name,
        "args": argsrepr,  # a redacted repr: never message text or phone numbers
        "kwargs": "{}",
        "retries": 0,
        "eta": None,
        "expires": None,
        "queue": queue,
        "exchange": "",
        "routing_key": queue,
        "timestamp": time.time() if now is None else now,
        "type": "task-sent",
    }
    message = {
        "body": base64.b64encode(orjson.dumps(event)).decode("ascii"),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {"hostname": HOSTNAME},
        "properties": {
            "delivery_mode": 1,  # events are transient
            "delivery_info": {"exchange": EXCHANGE, "routing_key": "task.sent"},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }
    return orjson.dumps(message)
