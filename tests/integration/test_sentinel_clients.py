"""Every client configured with REDIS_SENTINELS finds the primary through the Sentinels: `loopera doctor`, the
operator CLI (`loopera dlq`), Flower (its event stream and its broker view) and the API that feeds them.

The services get a REDIS_URL whose host and port lead nowhere, so nothing can work by reaching Redis directly.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import redis
from pydantic import SecretStr

from loopera.doctor import Doctor, Status
from shared.config import Settings
from tests.fakes.graph_fake import GraphFake
from tests.fakes.groq_fake import GroqFake
from tests.fakes.server import free_port, wait_for
from tests.processes import REPO, ServiceProcess, fake_backed_env, start_api
from tests.redis_ha import SentinelGroup
from tests.webhooks import encode, message_body, signed_headers, text_message

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    servers = SentinelGroup(tmp_path_factory.mktemp("sentinel-clients")).start()
    yield servers
    servers.stop()


@pytest.fixture(scope="module")
def env(group: SentinelGroup, graph_fake: GraphFake, groq_fake: GroqFake) -> dict[str, str]:
    return fake_backed_env("", graph_fake.url, graph_fake.version, groq_fake.url) | group.env()


def _settings(env: dict[str, str], **overrides: object) -> Settings:
    fields = {
        "redis_url": env["REDIS_URL"],
        "redis_sentinels": env["REDIS_SENTINELS"],
        "redis_sentinel_master": env["REDIS_SENTINEL_MASTER"],
        "app_secret": SecretStr(env["APP_SECRET"]),
    }
    return Settings(_env_file=None, **(fields | overrides))  # type: ignore[arg-type]


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "loopera.cli", *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_doctor_reaches_the_primary_through_the_sentinels(group: SentinelGroup, env: dict[str, str]) -> None:
    with Doctor(_settings(env)) as doctor:
        results = {r.check: r for r in doctor.check_redis()}
    assert results["redis.sentinel"].status is Status.PASS, results
    assert f"127.0.0.1:{group.primary.port}" in results["redis.sentinel"].detail
    assert results["redis.eviction"].status is Status.PASS
    # One replica confirms every acknowledgement, but the nodes run without AOF: a warning that says why.
    assert results["redis.persistence"].status is Status.WARN
    assert "waits for 1 of 1 replica" in results["redis.persistence"].detail


def test_doctor_fails_when_no_sentinel_knows_the_name(env: dict[str, str]) -> None:
    with Doctor(_settings(env, redis_sentinel_master="nobody")) as doctor:
        results = doctor.check_redis()
    assert [(r.check, r.status) for r in results] == [("redis.sentinel", Status.FAIL)]
    assert "REDIS_SENTINEL_MASTER" in results[0].fix


def test_dlq_cli_works_through_the_sentinels(group: SentinelGroup, env: dict[str, str]) -> None:
    record = {"task": "loopera.text.handle_message", "reason": "graph_190", "failed_at": 0, "payload": {}}
    with group.primary.client() as client:
        client.delete("lp:dlq")
        client.lpush("lp:dlq", orjson.dumps(record))
    listed = _cli(env, "dlq", "list")
    assert listed.returncode == 0, listed.stderr
    assert "graph_190" in listed.stdout


def test_flower_follows_the_sentinels_for_events_and_queues(
    group: SentinelGroup, env: dict[str, str], tmp_path: Path
) -> None:
    api, api_url = start_api(env, tmp_path / "api.log")
    port = free_port()
    flower_env = env | {"PORT": str(port), "FLOWER_UNAUTHENTICATED_API": "true"}
    flower = ServiceProcess(["flower", "--dev-no-auth"], flower_env, tmp_path / "flower.log").start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _get(f"{url}/healthcheck") is not None, 40, what="Flower")
        senders = iter(range(15550007000, 15550008000))

        def listed() -> bool:
            # Post until Flower's event receiver (connecting through the Sentinels) has seen a task-sent event. A new
            # sender each time: only a conversation's first job is dispatched (and announced) at once.
            sender = str(next(senders))
            raw = encode(message_body([text_message("via sentinel", sender=sender)], sender=sender))
            assert httpx.post(f"{api_url}/webhook", content=raw, headers=signed_headers(raw)).status_code == 200
            tasks = _get(f"{url}/api/tasks")
            return bool(tasks) and any(t.get("name") == "loopera.text.handle_message" for t in tasks.values())

        wait_for(listed, 30, interval=1.0, what="Flower to list a task the API announced")
        queues = _get(f"{url}/api/queues/length")  # Flower's broker view (LLEN through its Sentinel client)
        assert queues is not None
        lengths = {q["name"]: q["messages"] for q in queues["active_queues"]}
        assert lengths.get("text", 0) >= 1, queues
    finally:
        flower.stop()
        api.stop()


def _get(url: str) -> dict | None:  # type: ignore[type-arg]
    try:
        response = httpx.get(url, timeout=3)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    try:
        return response.json()  # type: ignore[no-any-return]
    except ValueError:
        return {}


def test_the_api_follows_a_switchover_without_a_restart(
    group: SentinelGroup, env: dict[str, str], tmp_path: Path
) -> None:
    """`SENTINEL FAILOVER` demotes a live primary: the API's connection to it now answers READONLY, which must send
    the channel back to the Sentinels, not into 503s forever. (Runs last in this module: it moves the primary.)"""
    api, api_url = start_api(env, tmp_path / "api.log")
    old = group.primary.port
    try:
        assert _post(api_url, "15550008000") == 200  # the channel is connected to the current primary
        sentinel = redis.Redis(port=group.sentinel_ports[0])
        try:
            sentinel.execute_command("SENTINEL", "FAILOVER", group.master_name)
        finally:
            sentinel.close()
        wait_for(lambda: group.primary_port() not in (None, old), timeout=30, what="the switchover")
        senders = iter(range(15550008001, 15550009000))
        wait_for(lambda: _post(api_url, str(next(senders))) == 200, timeout=30, interval=0.2, what="a 200 after it")
        assert "READONLY" not in api.output()  # handled, not surfaced as an error of its own
        assert api.process is not None and api.process.poll() is None
    finally:
        api.stop()


def _post(api_url: str, sender: str) -> int:
    raw = encode(message_body([text_message("switchover", sender=sender)], sender=sender))
    return httpx.post(f"{api_url}/webhook", content=raw, headers=signed_headers(raw), timeout=10).status_code
