"""The worker as a process (issue #10, part 3): without its secrets it exits at once, non-zero, with one clear line;
running, it writes one JSON object per line with each event's real level, Celery's own lines included."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.fakes.graph_fake import GraphFake
from tests.fakes.groq_fake import GroqFake, groq_error
from tests.fakes.server import wait_for
from tests.processes import REPO, RedisServer, ServiceProcess, fake_backed_env, start_worker
from tests.queued_jobs import ingest, text_job

pytestmark = pytest.mark.integration


@pytest.fixture
def env(own_redis: RedisServer, graph_fake: GraphFake, groq_fake: GroqFake) -> dict[str, str]:
    return fake_backed_env(own_redis.url, graph_fake.url, graph_fake.version, groq_fake.url)


@pytest.mark.parametrize("missing", ["WHATSAPP_TOKEN", "GROQ_API_KEY"])
def test_a_worker_without_its_secret_exits_non_zero_with_one_clear_line(
    missing: str, env: dict[str, str], tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "loopera.cli", "worker", "--pool", "text"],
        cwd=tmp_path,  # no .env to fall back on
        # Outside the sandbox (fake_backed_env sets SANDBOX=true for the http Graph fake; there a worker starts
        # without GROQ_API_KEY and answers with what is missing, docs/sandbox.md).
        env=env | {missing: "", "SANDBOX": "false", "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode != 0
    assert len(lines) == 1, lines
    assert missing in lines[0] and "cannot start" in lines[0]


def test_a_sandbox_worker_starts_without_a_groq_key(env: dict[str, str], tmp_path: Path) -> None:
    worker = ServiceProcess(
        ["worker", "--pool", "text", "--concurrency", "1"],
        env | {"GROQ_API_KEY": "", "SANDBOX": "true"},
        tmp_path / "sandbox-worker.log",
    ).start()
    try:
        worker.wait_for_output("worker.sandbox_mode", timeout=60)
        worker.wait_for_output("worker.ready", timeout=60)
    finally:
        worker.stop()


def json_lines(output: str) -> list[dict[str, Any]]:
    """Every line must be one JSON object: a line that is not fails the test with the line itself."""
    records = []
    for number, line in enumerate(output.splitlines(), start=1):
        try:
            record = json.loads(line)
        except ValueError:
            pytest.fail(f"line {number} is not JSON: {line[:300]!r}")
        assert isinstance(record, dict), line
        records.append(record)
    return records


def test_every_line_of_a_running_worker_is_one_json_object_with_its_real_level(
    env: dict[str, str], own_redis: RedisServer, graph_fake: GraphFake, groq_fake: GroqFake, tmp_path: Path
) -> None:
    graph_fake.reset()
    groq_fake.reset()
    client = redis.Redis.from_url(own_redis.url)
    client.flushdb()
    worker: ServiceProcess | None = None
    try:
        worker = start_worker(env | {"LOG_LEVEL": "INFO"}, tmp_path / "worker.log", "--pool", "text")
        # One failure first: Celery logs the retry itself, we log job.retrying at WARNING.
        groq_fake.faults.add("chat", groq_error(503, "service_unavailable", "down", "internal_server_error"))
        job = text_job("15550300001", "Log me properly")
        ingest(client, job, 60)
        wait_for(lambda: graph_fake.texts_to("15550300001"), timeout=30, what="the reply after one retry")
        wait_for(lambda: '"job.done"' in worker.output(), timeout=10, what="job.done")
    finally:
        client.close()
        if worker is not None:
            worker.stop()
    assert worker is not None
    output = worker.output()
    assert "ForkPoolWorker" not in output and "/MainProcess]" not in output  # no Celery text wrapping
    records = json_lines(output)
    levels = {r["event"]: r.get("level") for r in records}
    assert levels["worker.ready"] == "info"
    assert levels["job.retrying"] == "warning"
    assert levels["job.done"] == "info"
    celery = [r for r in records if str(r.get("logger", "")).startswith("celery")]
    assert any(r["level"] == "info" and str(r["event"]).endswith("ready.") for r in celery), celery
    assert any(r["level"] == "info" and " retry: " in str(r["event"]) for r in celery), celery
    assert any("Warm shutdown" in str(r.get("message", "")) for r in records)  # Celery's own notice, as JSON
    assert all(r.get("level") in {"debug", "info", "warning", "error", "critical"} for r in records)
