"""Every key and value in a Redis database as text, for "is this person's data still anywhere?" assertions.

Values of every type are read (strings, lists, hashes, sets, sorted sets with scores, streams), and every value is
also searched decoded: JSON strings inside JSON, and base64 (Celery's message bodies are base64 JSON inside JSON).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator
from typing import Any

import redis

_BASE64 = re.compile(rb"[A-Za-z0-9+/_-]{12,}={0,2}")


def _values(client: redis.Redis, key: bytes) -> Iterator[bytes]:
    kind = client.type(key)
    kind = kind.decode() if isinstance(kind, bytes) else kind
    if kind == "string":
        yield client.get(key) or b""
    elif kind == "list":
        yield from client.lrange(key, 0, -1)
    elif kind == "hash":
        for field, value in client.hgetall(key).items():
            yield field
            yield value
    elif kind == "set":
        yield from client.smembers(key)
    elif kind == "zset":
        for member, _ in client.zrange(key, 0, -1, withscores=True):
            yield member
    elif kind == "stream":
        for _, fields in client.xrange(key):
            for field, value in fields.items():
                yield field
                yield value
    else:
        raise AssertionError(f"unexpected Redis type {kind!r} at {key!r}")


def _decoded(raw: bytes, depth: int = 0) -> Iterator[str]:
    """`raw` as text, plus every JSON string and base64 run inside it, decoded (recursively, a few levels)."""
    text = raw.decode("utf-8", "replace")
    yield text
    if depth > 4:
        return
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        parsed = None
    if parsed is not None:
        for leaf in _json_strings(parsed):
            yield from _decoded(leaf.encode(), depth + 1)
    for run in _BASE64.findall(raw):
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                inner = decode(run + b"=" * (-len(run) % 4))
            except (binascii.Error, ValueError):
                continue
            try:
                inner.decode("utf-8")
            except UnicodeDecodeError:
                continue  # random bytes that happen to look like base64
            yield from _decoded(inner, depth + 1)


def _json_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
        yield json.dumps(value, ensure_ascii=False)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _json_strings(v)
    elif isinstance(value, list):
        for item in value:
            yield from _json_strings(item)


def dump_texts(client: redis.Redis) -> list[tuple[str, str]]:
    """(key, text) for every key name and every decoded value in the database."""
    out: list[tuple[str, str]] = []
    for key in client.scan_iter(count=1000):
        name = key.decode("utf-8", "replace")
        out.append((name, name))
        for value in _values(client, key):
            out.extend((name, text) for text in _decoded(value))
    return out


def findings(client: redis.Redis, needles: list[str]) -> list[tuple[str, str]]:
    """(key, needle) for each needle found in a key name or value (case-insensitive)."""
    found: set[tuple[str, str]] = set()
    for key, text in dump_texts(client):
        folded = text.casefold()
        found.update((key, needle) for needle in needles if needle.casefold() in folded)
    return sorted(found)
