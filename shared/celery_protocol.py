"""Build Celery task messages (protocol v2, JSON, as kombu's Redis transport stores them) without kombu.

Why: going through kombu's producer costs ~0.5 ms and several allocations per message; the webhook path builds
one envelope per job and pushes it with the dedupe in a single Redis round trip. The layout follows Celery's
documented message protocol v2 and is checked against the pinned Celery's own `as_task_v2` in the tests.
"""

from __future__ import annotations

import base64
import os
import socket
from typing import Any

import orjson

_ORIGIN = f"loopera-api@{socket.gethostname()}:{os.getpid()}"
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


_VARIANT = "89ab"


def new_task_id() -> str:
    """A random (version 4) UUID string, as Celery's own task ids. Formatted directly from 16 random bytes:
    `str(uuid.uuid4())` builds a UUID object first and costs 2.4x as much, once per message of a webhook."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def build_task_message(
    task_name: str,
    task_id: str,
    queue: str,
    args: list[Any],
    argsrepr: str,
) -> bytes:
    """The JSON envelope kombu's Redis transport LPUSHes onto the list named `queue`.

    `argsrepr` is what Flower and worker logs show instead of the arguments: it must not contain message text
    or phone numbers.
    """
    body = orjson.dumps([args, {}, _EMBED])
    envelope = {
        "body": base64.b64encode(body).decode("ascii"),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "lang": "py",
            "task": task_name,
            "id": task_id,
            "shadow": None,
            "eta": None,
            "expires": None,
            "group": None,
            "group_index": None,
            "retries": 0,
            "timelimit": [None, None],
            "root_id": task_id,
            "parent_id": None,
            "argsrepr": argsrepr,
            "kwargsrepr": "{}",
            "origin": _ORIGIN,
            "ignore_result": True,
            "replaced_task_nesting": 0,
            "stamped_headers": None,
            "stamps": {},
        },
        "properties": {
            "correlation_id": task_id,
            "reply_to": "",
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": task_id,
        },
    }
    return orjson.dumps(envelope)
