"""`loopera trace` on a message a real worker answered: the whole story from the ledger, personal data only on
request."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
import redis

from shared.config import Settings
from shared.ledger import ledger_key, message_ref
from shared.logging import correlation_id
from tests.fakes.graph_fake import GraphFake
from tests.fakes.server import wait_for
from tests.integration.conftest import Webhooks
from tests.processes import REPO, ServiceProcess
from tests.webhooks import APP_SECRET, message_body, text_message

pytestmark = pytest.mark.integration

TEXT = "trace me: the blue parcel"


def trace(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loopera.cli", "trace", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_trace_tells_the_story_of_an_answered_message(
    service_env: dict[str, str],
    worker_service: ServiceProcess,
    webhooks: Webhooks,
    graph_fake: GraphFake,
    redis_client: redis.Redis,
) -> None:
    sender = f"1555{uuid.uuid4().int % 10**8:08d}"
    message = text_message(TEXT, sender=sender)
    assert webhooks.post(message_body([message], sender=sender, name="Tracy Tracer")).status_code == 200
    ref = message_ref(message["id"], Settings(_env_file=None, app_secret=APP_SECRET).message_hashing_key())
    wait_for(lambda: redis_client.hexists(ledger_key(ref), "memory"), what="the turn in memory")
    [reply] = graph_fake.texts_to(sender)
    meta_id = (redis_client.hget(ledger_key(ref), "send:text:0:meta") or b"").decode()
    assert meta_id.startswith("wamid.out.")  # what Graph answered for the send

    result = trace(service_env, message["id"])
    assert result.returncode == 0, result.stderr
    story = result.stdout
    for expected in (
        "received",
        "handed to its queue at once",
        "claimed",
        "runs: 1",
        "0 failed",
        "memory       written",
    ):
        assert expected in story
    assert "stage        staleness: 'fresh'" in story
    assert f"correlation_id {correlation_id(message['id'])}" in story  # the id to grep the logs for
    assert "stage        chat: <" in story  # the answer's length, not its words
    assert "send         text:0: sent" in story
    for private in (sender, "Tracy", TEXT, reply, message["id"], meta_id):
        assert private not in story

    revealed = trace(service_env, ref, "--show-content").stdout  # by ref too, as logs and dead letters show it
    for private in (sender, "Tracy Tracer", "blue parcel", reply, message["id"], meta_id):
        assert private in revealed


def test_trace_of_an_unknown_message_says_so(service_env: dict[str, str], redis_client: redis.Redis) -> None:
    result = trace(service_env, "wamid.never-received")
    assert result.returncode == 1
    assert "no ledger" in result.stdout


def test_trace_finds_a_message_hashed_with_another_key(
    service_env: dict[str, str],
    worker_service: ServiceProcess,
    webhooks: Webhooks,
    graph_fake: GraphFake,
    redis_client: redis.Redis,
) -> None:
    # `make run`'s sandbox generates its app secret per run; the CLI, run later with .env's, has another key.
    sender = f"1555{uuid.uuid4().int % 10**8:08d}"
    message = text_message("traced under another key", sender=sender)
    assert webhooks.post(message_body([message], sender=sender)).status_code == 200
    ref = message_ref(message["id"], Settings(_env_file=None, app_secret=APP_SECRET).message_hashing_key())
    wait_for(lambda: redis_client.hexists(ledger_key(ref), "memory"), what="the turn in memory")
    other_key = service_env | {"APP_SECRET": "another-app-secret-0123456789abcdef"}
    result = trace(other_key, message["id"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "memory       written" in result.stdout


def test_an_operator_verb_without_redis_says_so_in_one_line(service_env: dict[str, str]) -> None:
    down = service_env | {"REDIS_URL": "redis://127.0.0.1:1/0"}
    result = trace(down, "wamid.whatever")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "redis not reachable at REDIS_URL (ConnectionError); `loopera doctor` checks it"
    ]
