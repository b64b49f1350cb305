"""Signed bodies of odd shapes against a real uvicorn API and a real Redis (issue #11, kind 2).

The handed cases (`cases/hardening/`) and a property-based test: real envelopes from `meta-webhooks/` mutated in
types, nesting, nulls and sizes. Whatever the shape: never a 500, the process survives, every valid message of the
body is queued exactly once, and nothing the worker's schema would refuse is queued."""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.jobs import InboundJob
from shared.ledger import ledger_key
from shared.mailbox import INBOX_PREFIX
from tests.fakes.graph_fake import PHONE_NUMBER_ID
from tests.fakes.server import wait_for
from tests.processes import RedisServer, ServiceProcess, start_api
from tests.webhooks import CASE_FIXTURES, all_fixture_bodies, encode, fresh_ids, signed_headers

pytestmark = pytest.mark.integration

MAX_BYTES = 262144
CASE_NUMBER = "106540352242922"


@pytest.fixture(scope="module")
def shapes_api(
    service_env: dict[str, str], redis_server: RedisServer, workdir: Path
) -> Iterator[tuple[ServiceProcess, str, str]]:
    """(process, api url, redis url) on database 2, which no worker reads."""
    redis_url = redis_server.url.rsplit("/", 1)[0] + "/2"
    env = {**service_env, "REDIS_URL": redis_url, "MAX_WEBHOOK_BYTES": str(MAX_BYTES), "LOG_LEVEL": "INFO"}
    process, url = start_api(env, workdir / "shapes-api.log")
    yield process, url, redis_url
    process.stop()


@pytest.fixture
def api(shapes_api: tuple[ServiceProcess, str, str]) -> Iterator[tuple[ServiceProcess, httpx.Client, redis.Redis]]:
    process, url, redis_url = shapes_api
    store = redis.Redis.from_url(redis_url)
    store.flushdb()
    with httpx.Client(base_url=url, timeout=10) as client:
        yield process, client, store
    store.close()


def post(client: httpx.Client, raw: bytes) -> httpx.Response:
    return client.post("/webhook", content=raw, headers=signed_headers(raw))


def queued_message_ids(store: redis.Redis) -> Counter[str]:
    """Message ids of every job in every conversation mailbox (queued = in a mailbox; the head is also in its
    Celery queue). Each job must be one the worker's schema accepts."""
    ids: Counter[str] = Counter()
    for key in store.scan_iter(match=f"{INBOX_PREFIX}*"):
        for entry in store.lrange(key, 0, -1):
            _task_id, _queue, envelope = entry.split(b" ", 2)
            body = json.loads(base64.b64decode(json.loads(envelope)["body"]))
            (ref,) = body[0]  # the task's only argument: the job is in the message's ledger
            job = InboundJob.model_validate_json(store.hget(ledger_key(ref), "job") or b"")
            ids[job.message_id] += 1
    return ids


def case_body(name: str) -> bytes:
    return (
        (CASE_FIXTURES / "hardening" / name)
        .read_bytes()
        .strip()
        .replace(CASE_NUMBER.encode(), PHONE_NUMBER_ID.encode())
    )


# --- the handed cases -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "queued"),
    [
        ("ack-shapes/change_not_dict.json", []),
        ("ack-shapes/from_is_list.json", []),
        ("ack-shapes/poison_batch_innocent_plus_bad.json", ["wamid.c01.innocent"]),
        ("worker-rejects-payload.json", ["wamid.c02.first"]),
    ],
)
def test_handed_cases_are_acknowledged_and_only_valid_messages_queued(api, name: str, queued: list[str]) -> None:
    _, client, store = api
    assert post(client, case_body(name)).status_code == 200
    assert queued_message_ids(store) == Counter(queued)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("id", "wamid." + "x" * 300, "schema"),
        ("from", "1" * 300, "schema"),
        ("type", "t" * 100, "schema"),
        ("id", None, "no_id"),
        ("text", None, "too_deep"),  # replaced by 250 levels of nesting below
    ],
    ids=["id-over-256", "from-over-256", "type-over-64", "id-null", "nested-250"],
)
def test_what_the_worker_schema_refuses_is_skipped_and_its_neighbours_queued(
    api, field: str, value: Any, reason: str
) -> None:
    process, client, store = api
    body = json.loads(case_body("worker-rejects-payload.json"))
    messages = body["entry"][0]["changes"][0]["value"]["messages"]
    bad = {**messages[0], "id": "wamid.c02.bad", field: value if field != "text" else _nest(250)}
    messages.append(bad)
    messages.append({**messages[0], "id": "wamid.c02.last"})
    marker = f'"index":1,"reason":"{reason}"'
    logged_before = process.output().count(marker)
    assert post(client, encode(body)).status_code == 200
    assert queued_message_ids(store) == Counter(["wamid.c02.first", "wamid.c02.last"])
    wait_for(lambda: process.output().count(marker) > logged_before, timeout=10, what=marker)


def test_a_skipped_item_is_logged_by_position_without_its_content(api) -> None:
    process, client, _ = api
    assert post(client, case_body("ack-shapes/poison_batch_innocent_plus_bad.json")).status_code == 200
    process.wait_for_output('"index":1,"reason":"from_not_a_string"', timeout=10)
    line = next(line for line in process.output().splitlines() if '"index":1,"reason":"from_not_a_string"' in line)
    event = json.loads(line)
    assert (event["event"], event["entry"], event["change"], event["item"], event["index"]) == (
        "webhook.item_skipped",
        0,
        0,
        "messages",
        1,
    )
    assert "wamid" not in line and "15550000001" not in line and "hi" not in re.sub(r'"[a-z_]+":', "", line)
    metrics = client.get("/metrics").text
    assert 'loopera_webhook_items_skipped_total{item="messages",reason="from_not_a_string"}' in metrics


# --- property-based: mutated real envelopes -------------------------------------------------------------------

ORIGINALS = [body for _, body in all_fixture_bodies()]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every position in a JSON tree (the root excluded)."""
    found: list[tuple[Any, ...]] = []
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        found.append((*prefix, key))
        found += _paths(child, (*prefix, key))
    return found


def _nest(depth: int) -> Any:
    value: Any = {"body": "deep"}
    for i in range(depth):
        value = [value] if i % 2 else {"x": value}
    return value


TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
REPLACEMENTS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
    st.integers(min_value=1000, max_value=120_000).map(lambda n: "x" * n),  # huge strings
    st.lists(st.one_of(st.none(), st.integers(), TEXT), max_size=4),
    st.dictionaries(TEXT, st.one_of(st.none(), st.integers(), TEXT), max_size=3),
    st.integers(min_value=20, max_value=300).map(_nest),  # deep nesting (the 250 levels)
)


@st.composite
def mutated_envelope(draw: st.DrawFn) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    """A real envelope (some batched with a second one), with fresh ids and 1-4 positions replaced or deleted."""
    body = fresh_ids(draw(st.sampled_from(ORIGINALS)))
    if draw(st.booleans()):
        other = fresh_ids(draw(st.sampled_from(ORIGINALS)))
        body["entry"] = [*body.get("entry", []), *other.get("entry", [])]
    mutated: list[tuple[Any, ...]] = []
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = _paths(body)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = body
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.integers(0, 4)) == 0:
            del parent[path[-1]]  # a missing key, or a shorter list (later indices move: mark the list itself)
            mutated.append(path if isinstance(parent, dict) else path[:-1])
        else:
            parent[path[-1]] = draw(REPLACEMENTS)
            mutated.append(path)
    return body, mutated


def _touched(here: tuple[Any, ...], mutated: list[tuple[Any, ...]]) -> bool:
    """Whether a mutation reached the message at `here`: on its path, inside it, or in what it depends on in its
    change (the change's `field`, the value's `metadata` and `contacts`)."""
    for p in mutated:
        if here[: len(p)] == p or p[: len(here)] == here:
            return True
        if p[:4] == here[:4] and len(p) > 4 and p[4] == "field":
            return True
        if p[:5] == here[:5] and len(p) > 5 and p[5] in ("metadata", "contacts"):
            return True
    return False


def _untouched_messages(body: Any, mutated: list[tuple[Any, ...]]) -> list[str]:
    """Ids of the messages of the mutated body that no mutation reached: they are exactly as in the real envelope,
    where they were valid, so they must be queued exactly once. Walks whatever shape is left."""
    ids = []
    entries = body.get("entry") if isinstance(body, dict) else None
    for e, entry in enumerate(entries if isinstance(entries, list) else []):
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for c, change in enumerate(changes if isinstance(changes, list) else []):
            value = change.get("value") if isinstance(change, dict) else None
            messages = value.get("messages") if isinstance(value, dict) else None
            for m, message in enumerate(messages if isinstance(messages, list) else []):
                here = ("entry", e, "changes", c, "value", "messages", m)
                if not _touched(here, mutated) and change["field"] == "messages":
                    assert value["metadata"]["phone_number_id"] == PHONE_NUMBER_ID
                    ids.append(message["id"])
    return ids


@settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=mutated_envelope())
def test_mutated_envelopes_never_500_and_every_valid_message_is_queued_once(api, case) -> None:
    process, client, store = api
    store.flushdb()
    body, mutated = case
    expected = _untouched_messages(body, mutated)
    raw = encode(body)
    response = post(client, raw)
    assert process.process is not None and process.process.poll() is None, "the API died"
    if len(raw) > MAX_BYTES:
        assert response.status_code == 413
        return
    assert response.status_code == 200, (response.status_code, response.text)
    queued = queued_message_ids(store)
    assert all(count == 1 for count in queued.values()), queued
    assert set(expected) <= set(queued), (expected, queued)
    # The same body again: acknowledged, and nothing queued twice.
    assert post(client, raw).status_code == 200
    assert queued_message_ids(store) == queued
