"""Signed webhook bodies as Meta sends them, each with its own message ids, written as wrk request pools."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from tests.fakes.graph_fake import PHONE_NUMBER_ID
from tests.webhooks import APP_SECRET

TEXTS = (
    "Hi! Can you recommend a good book about distributed systems?",
    "What time is it in Tokyo right now?",
    "Translate 'good morning' into Spanish, please.",
    "ok thanks",
)


def _value(messages: list[dict[str, Any]] | None, contacts: list[dict[str, Any]], statuses: list[Any] | None) -> Any:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
    }
    if contacts:
        value["contacts"] = contacts
    if messages is not None:
        value["messages"] = messages
    if statuses is not None:
        value["statuses"] = statuses
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}],
    }


def _message(n: int, sender: str, now: str) -> dict[str, Any]:
    return {
        "from": sender,
        "id": f"wamid.HBgLMTU1NTAwMDAwMDEVAgASGBQzQUI{n:016d}",
        "timestamp": now,
        "text": {"body": TEXTS[n % len(TEXTS)]},
        "type": "text",
    }


def text_bodies(
    count: int, start: int = 0, conversations: int = 10_000, per_body: int = 1, user_ids: bool = True
) -> Iterator[bytes]:
    """`per_body` text messages per webhook (Meta batches), senders cycling over `conversations` users. With
    `user_ids` each sender also carries a business-scoped user id, as every 2026 webhook does; without, the
    phone-only shape of older webhooks (every message then costs the API an identity round trip)."""
    now = str(int(time.time()))
    ids = itertools.count(start)
    for _ in range(count):
        messages, contacts = [], []
        for _ in range(per_body):
            n = next(ids)
            sender = f"1555{n % conversations:07d}"
            messages.append(_message(n, sender, now) | ({"from_user_id": f"US.{sender}"} if user_ids else {}))
            contact = {"profile": {"name": f"User {n % conversations}"}, "wa_id": sender}
            contacts.append(contact | ({"user_id": f"US.{sender}"} if user_ids else {}))
        yield orjson.dumps(_value(messages, contacts, None))


STATUS_CYCLE = ("sent", "delivered", "read")


def our_ref(n: int) -> str:
    """The ledger ref of a benchmark's n-th reply (any 32 hex digits is a ref's shape)."""
    return f"{n:032x}"


def status_bodies(count: int, start: int = 0, ours: bool = False) -> Iterator[bytes]:
    """A status callback: ~3 of these arrive for every reply we send. `ours`: it carries the callback data of one of
    our reply parts (shared/callback_data.py), cycling sent / delivered / read, so the API records it in Redis;
    else a `delivered` for a message that is not ours (counted only)."""
    now = str(int(time.time()))
    for n in range(start, start + count):
        status = {
            "id": f"wamid.HBgLMTU1NTAwMDAwMDEVAgARGBI{n:016d}",
            "status": STATUS_CYCLE[n % 3] if ours else "delivered",
            "timestamp": now,
            "recipient_id": f"1555{n % 10_000:07d}",
            "conversation": {"id": "7270432eae37498234f4444b35ffc5", "origin": {"type": "service"}},
            "pricing": {"billable": True, "pricing_model": "PMP", "category": "service", "type": "regular"},
        }
        if ours:
            status["biz_opaque_callback_data"] = f"lp1:{our_ref(n // 3)}:text:0"
        yield orjson.dumps(_value(None, [], [status]))


def seed_reply_ledgers(client: Any, count: int, start: int = 0) -> None:
    """The ledgers of the replies `status_bodies(count, start, ours=True)` report on: each sent, awaiting statuses."""
    pipe = client.pipeline(transaction=False)
    now = str(int(time.time() * 1000))
    for n in range(start // 3, (start + count) // 3 + 1):
        fields = {"conv": f"u:{n}", "task": f"t{n}", "received_ms": now, "job": "{}", "send:text:0": "done"}
        pipe.hset(f"lp:msg:{our_ref(n)}", mapping=fields)
    pipe.execute()


def write_pool(path: Path, bodies: Iterator[bytes], secret: str = APP_SECRET) -> int:
    """One `sha256=<hex><TAB><body>` line per request (orjson output has no raw newlines or tabs)."""
    key = secret.encode()
    count = 0
    with path.open("wb") as out:
        for body in bodies:
            out.write(b"sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest().encode() + b"\t" + body + b"\n")
            count += 1
    return count
