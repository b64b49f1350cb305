"""The webhook API process on its own: verification, signatures, limits, routing into Redis, readiness.

These tests use an API whose Redis database no worker consumes, so what the API wrote can be inspected."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from shared.config import Settings
from shared.ledger import ledger_key, message_ref
from shared.mailbox import seen_key
from tests.fakes.server import free_port
from tests.processes import RedisServer, ServiceProcess, start_api
from tests.webhooks import (
    APP_SECRET,
    VERIFY_TOKEN,
    all_fixture_bodies,
    conversation_of,
    encode,
    fresh_ids,
    message_body,
    sign,
    signed_headers,
    text_message,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def quiet_api(service_env: dict[str, str], redis_server: RedisServer, workdir: Path) -> Iterator[tuple[str, str]]:
    """(api url, redis url) on database 1, which no worker reads."""
    redis_url = redis_server.url.rsplit("/", 1)[0] + "/1"
    process, url = start_api(
        {**service_env, "REDIS_URL": redis_url, "MAX_WEBHOOK_BYTES": "65536"}, workdir / "quiet-api.log"
    )
    yield url, redis_url
    process.stop()


@pytest.fixture
def api(quiet_api: tuple[str, str]) -> Iterator[tuple[httpx.Client, redis.Redis]]:
    url, redis_url = quiet_api
    store = redis.Redis.from_url(redis_url)
    store.flushdb()
    with httpx.Client(base_url=url, timeout=10) as client:
        yield client, store
    store.close()


def post(client: httpx.Client, raw: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return client.post("/webhook", content=raw, headers=headers if headers is not None else signed_headers(raw))


def queued_jobs(store: redis.Redis, queue: str) -> list[dict[str, Any]]:
    jobs = []
    for raw in store.lrange(queue, 0, -1):
        envelope = json.loads(raw)
        assert envelope["properties"]["delivery_info"]["routing_key"] == queue
        # The task's only argument is the message's ref; the job itself is in the message's ledger.
        (ref,) = json.loads(base64.b64decode(envelope["body"]))[0]
        jobs.append(json.loads(store.hget(ledger_key(ref), "job") or b"null"))
    return jobs


def all_queued(store: redis.Redis) -> dict[str, list[dict[str, Any]]]:
    return {queue: queued_jobs(store, queue) for queue in ("text", "audio", "vision")}


# --- GET endpoints -------------------------------------------------------------------------------------------


def test_verification_echoes_the_raw_challenge(api) -> None:
    client, _ = api
    params = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
    response = client.get("/webhook", params=params)
    assert response.status_code == 200
    assert response.text == "1158201444"
    assert response.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"},
        {"hub.challenge": "1"},
        {},
    ],
)
def test_verification_refuses_wrong_token_or_mode(api, params: dict[str, str]) -> None:
    client, _ = api
    assert client.get("/webhook", params=params).status_code == 403


def test_status_health_and_ready(api) -> None:
    client, _ = api
    root = client.get("/").json()
    assert root["status"] == "ok" and root["features"]["signature_verification"] is True
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").status_code == 200


# --- signatures and bad input ---------------------------------------------------------------------------------


def test_missing_signature_is_401_and_nothing_is_queued(api) -> None:
    client, store = api
    raw = encode(message_body([text_message("hi")]))
    assert post(client, raw, {"content-type": "application/json"}).status_code == 401
    assert all_queued(store) == {"text": [], "audio": [], "vision": []}


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s[:-1] + ("0" if s[-1] != "0" else "1"),  # bad
        lambda s: s[:-4],  # wrong length (short)
        lambda s: s + "abcd",  # wrong length (long)
        lambda s: s.removeprefix("sha256="),  # no algorithm prefix
        lambda s: "sha256=" + sign(b"other body").removeprefix("sha256="),  # signature of another body
    ],
    ids=["bad", "short", "long", "no-prefix", "other-body"],
)
def test_bad_signatures_are_403(api, mangle) -> None:
    client, store = api
    raw = encode(message_body([text_message("hi")]))
    headers = {"content-type": "application/json", "x-hub-signature-256": mangle(sign(raw))}
    assert post(client, raw, headers).status_code == 403
    assert store.dbsize() == 0


def test_invalid_json_is_400(api) -> None:
    client, _ = api
    for raw in (b"{not json", b"", b"\xff\xfe"):
        response = post(client, raw)
        assert response.status_code == 400, raw
        assert response.json() == {"error": "invalid JSON"}


def test_oversize_body_is_413(api) -> None:
    client, store = api
    raw = encode(message_body([text_message("x" * 70000)]))
    assert post(client, raw).status_code == 413
    assert store.dbsize() == 0


def test_other_methods_are_405(api) -> None:
    client, _ = api
    assert client.put("/webhook", content=b"{}").status_code == 405


# --- routing -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "body"), all_fixture_bodies(), ids=[n for n, _ in all_fixture_bodies()])
def test_every_fixture_is_accepted_and_routed_by_type(api, name: str, body: dict[str, Any]) -> None:
    client, store = api
    body = fresh_ids(body)
    response = post(client, encode(body))
    assert response.status_code == 200, response.text
    expected: dict[str, list[str]] = {"text": [], "audio": [], "vision": []}
    for entry in body["entry"]:
        for change in entry["changes"]:
            if change["field"] == "smb_message_echoes":  # a person's reply: stored in order (docs/handoff.md)
                expected["text"] += [echo["id"] for echo in change["value"]["message_echoes"]]
            if change["field"] != "messages":
                continue
            for message in change["value"].get("messages", []):
                queue = {"audio": "audio", "image": "vision"}.get(message["type"], "text")
                if message["type"] == "edit" and message["edit"]["message"].get("type") == "image":
                    queue = "vision"  # an edited photo caption: the photo is looked at again
                expected[queue].append(message["id"])
    queued = {queue: [job["message_id"] for job in jobs] for queue, jobs in all_queued(store).items()}
    assert queued == expected


@pytest.mark.parametrize("ascii_only", [True, False], ids=["escaped-unicode", "raw-utf8"])
def test_non_ascii_text_survives_signing_either_way(api, ascii_only: bool) -> None:
    client, store = api
    text = "¿Qué tal? Ça va — مرحبا 👋"
    raw = encode(message_body([text_message(text)]), ascii_only=ascii_only)
    assert (b"\\u00bf" in raw) is ascii_only
    assert post(client, raw).status_code == 200
    assert queued_jobs(store, "text")[0]["message"]["text"]["body"] == text


def test_a_batch_is_queued_in_full_with_one_job_per_conversation_in_flight(api) -> None:
    client, store = api
    body = message_body([text_message(f"a{i}", sender="1555") for i in range(3)], sender="1555")
    body["entry"].append(message_body([text_message("b", sender="1666")], sender="1666")["entry"][0])
    assert post(client, encode(body)).status_code == 200
    # One job per conversation is handed to Celery; the others wait, in order, in the conversation's mailbox.
    conversations = sorted(job["conversation"] for job in queued_jobs(store, "text"))
    assert conversations == sorted([conversation_of("1555"), conversation_of("1666")])
    inbox = store.lrange(f"lp:inbox:{conversation_of('1555')}", 0, -1)
    assert len(inbox) == 3
    assert store.zcard("lp:leases") == 2


def test_duplicates_are_acknowledged_but_queued_once(api) -> None:
    client, store = api
    raw = encode(message_body([text_message("once")]))
    assert [post(client, raw).status_code for _ in range(3)] == [200, 200, 200]
    assert len(queued_jobs(store, "text")) == 1
    message_id = json.loads(raw)["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    ref = message_ref(message_id, Settings(_env_file=None, app_secret=APP_SECRET).message_hashing_key())
    assert store.ttl(seen_key(ref)) > 7 * 86400


def test_messages_for_another_phone_number_are_acknowledged_and_ignored(api) -> None:
    client, store = api
    body = message_body([text_message("not for us")])
    body["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "999999"
    assert post(client, encode(body)).status_code == 200
    assert store.dbsize() == 0


def test_statuses_and_unknown_shapes_are_acknowledged(api) -> None:
    client, store = api
    for raw in (b"{}", b"[]", b'{"object":"page","entry":[]}', b'{"entry":[{"changes":[{"field":"x"}]}]}'):
        assert post(client, raw).status_code == 200
    assert store.dbsize() == 0


# --- Redis unavailable ---------------------------------------------------------------------------------------


def test_without_redis_ready_fails_and_webhooks_get_503(service_env: dict[str, str], workdir: Path) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    process: ServiceProcess
    process, url = start_api({**service_env, "REDIS_URL": dead_redis}, workdir / "no-redis-api.log")
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            assert client.get("/health").status_code == 200
            assert client.get("/ready").status_code == 503
            raw = encode(message_body([text_message("keep me")]))
            response = post(client, raw)
            assert response.status_code == 503
            # A status-only webhook needs no Redis and is still acknowledged.
            assert post(client, b'{"entry":[]}').status_code == 200
    finally:
        process.stop()
