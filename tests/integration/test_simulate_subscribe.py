"""`loopera simulate` against the real API and worker processes, and `loopera subscribe` against the Graph fake."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from pydantic import SecretStr

from loopera.simulate import GraphStandIn
from loopera.subscribe import GraphRequestError, subscribe
from shared.config import ConfigError, Settings
from shared.ledger import LEDGER_PREFIX
from shared.mailbox import seen_key
from tests.fakes.graph_fake import APP_ID, TOKEN, WABA_ID, GraphFake
from tests.fakes.server import Fault, free_port
from tests.processes import REPO, RedisServer, start_api, start_worker
from tests.webhooks import MEDIA_FIXTURES, VERIFY_TOKEN

pytestmark = pytest.mark.integration


def _cli(env: dict[str, str], *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loopera.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_simulate_text_posts_a_signed_webhook_that_gets_queued(
    service_env: dict[str, str], api_url: str, redis_client: redis.Redis
) -> None:
    result = _cli(service_env, "simulate", "--text", "hello from simulate", "--api", api_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "webhook -> 200" in result.stdout
    # The signature was accepted and the message queued (its dedupe marker exists; a worker may already run it).
    # (Keys carry the message's ref, a keyed hash of its id: find it through the ledger the webhook wrote.)
    refs = [
        key.decode().removeprefix(LEDGER_PREFIX)
        for key in redis_client.scan_iter(f"{LEDGER_PREFIX}*")
        if b'"wamid.sim.' in (job := redis_client.hget(key, "job") or b"") and b"hello from simulate" in job
    ]
    assert len([ref for ref in refs if redis_client.exists(seen_key(ref))]) == 1


def test_simulate_with_a_wrong_secret_is_rejected(service_env: dict[str, str], api_url: str) -> None:
    result = _cli({**service_env, "APP_SECRET": "not-the-api-secret"}, "simulate", "--text", "hi", "--api", api_url)
    assert result.returncode == 1
    assert "webhook -> 403" in result.stdout


@pytest.fixture
def stand_in_stack(service_env: dict[str, str], workdir: Path, redis_server: RedisServer) -> Iterator[tuple[str, int]]:
    """An API and a worker of their own (Redis db 1, so the session's workers cannot take the job), the worker
    pointed at the port where `loopera simulate` will run its Graph stand-in."""
    port = free_port()
    url = redis_server.url.rsplit("/", 1)[0] + "/1"
    redis.Redis.from_url(url).flushdb()
    env = {**service_env, "REDIS_URL": url, "GRAPH_API_URL": f"http://127.0.0.1:{port}"}
    api, api_url = start_api(env, workdir / f"api-sim-{port}.log")
    worker = start_worker(env, workdir / f"worker-sim-{port}.log", "--pool", "all", "--concurrency", "1")
    yield api_url, port
    worker.stop()
    api.stop()


def test_simulate_round_trip_through_the_graph_stand_in(
    service_env: dict[str, str], stand_in_stack: tuple[str, int]
) -> None:
    api_url, port = stand_in_stack
    result = _cli(
        service_env, "simulate", "--text", "ping", "--api", api_url, "--graph-port", str(port), "--wait", "40"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "reply <- text: You said: ping" in result.stdout


def test_simulate_image_is_downloaded_from_the_stand_in_and_answered(
    service_env: dict[str, str], stand_in_stack: tuple[str, int]
) -> None:
    api_url, port = stand_in_stack
    image = str(MEDIA_FIXTURES / "photo.jpg")
    result = _cli(
        service_env,
        *("simulate", "--image", image, "--caption", "what is this?", "--api", api_url),
        *("--graph-port", str(port), "--wait", "40"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "media downloads by the worker: 1" in result.stdout
    assert "reply <- text:" in result.stdout


def test_simulate_voice_note_is_downloaded_transcribed_and_answered(
    service_env: dict[str, str], stand_in_stack: tuple[str, int]
) -> None:
    api_url, port = stand_in_stack
    voice = str(MEDIA_FIXTURES / "voice-en.ogg")
    result = _cli(
        service_env, "simulate", "--voice", voice, "--api", api_url, "--graph-port", str(port), "--wait", "60"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "media downloads by the worker: 1" in result.stdout
    assert "reply <- " in result.stdout


def test_graph_stand_in_serves_media_like_graph(tmp_path: Path) -> None:
    stand_in = GraphStandIn("v25.0")
    stand_in.start()
    try:
        voice = MEDIA_FIXTURES / "voice-en.ogg"
        media_id, mime = stand_in.add_file(voice)
        assert mime == "audio/ogg"
        info = httpx.get(f"{stand_in.url}/v25.0/{media_id}", headers={"Authorization": "Bearer x"}).json()
        assert info["mime_type"] == "audio/ogg" and info["file_size"] == voice.stat().st_size
        assert httpx.get(info["url"]).content == voice.read_bytes()
        assert httpx.get(f"{stand_in.url}/v25.0/unknown").status_code == 400
    finally:
        stand_in.stop()


def test_simulate_media_needs_the_stand_in(service_env: dict[str, str], api_url: str) -> None:
    image = str(MEDIA_FIXTURES / "photo.jpg")
    result = _cli(service_env, "simulate", "--image", image, "--api", api_url)
    assert result.returncode != 0 and "--graph-port" in result.stdout + result.stderr


# --- subscribe --------------------------------------------------------------------------------------------------
@pytest.fixture
def settings(graph_fake: GraphFake) -> Settings:
    return Settings(
        _env_file=None,
        whatsapp_token=SecretStr(TOKEN),
        verify_token=SecretStr(VERIFY_TOKEN),
        waba_id=WABA_ID,
        meta_app_id=APP_ID,
        graph_api_url=graph_fake.url,
        graph_api_version=graph_fake.version,
    )


def test_subscribe_posts_and_reads_back(settings: Settings, graph_fake: GraphFake) -> None:
    assert not graph_fake.subscriptions
    result = subscribe(settings)
    assert result.includes(APP_ID)
    methods = [r.method for r in graph_fake.requests if r.path.endswith("/subscribed_apps")]
    assert methods == ["POST", "GET"]


def test_subscribe_with_callback_override(settings: Settings, graph_fake: GraphFake) -> None:
    result = subscribe(settings, "https://bot.example.com/webhook")
    assert result.apps[0]["override_callback_uri"] == "https://bot.example.com/webhook"
    posted = next(r for r in graph_fake.requests if r.method == "POST")
    assert posted.json == {"override_callback_uri": "https://bot.example.com/webhook", "verify_token": VERIFY_TOKEN}


def test_subscribe_rejects_a_too_long_callback(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="200"):
        subscribe(settings, "https://example.com/" + "x" * 200)


def test_subscribe_reports_graph_errors(settings: Settings, graph_fake: GraphFake) -> None:
    graph_fake.faults.add(
        "subscribed_apps", Fault(403, {"error": {"message": "(#200) Permissions error", "code": 200}})
    )
    with pytest.raises(GraphRequestError, match="Permissions error"):
        subscribe(settings)


def test_subscribe_cli(settings: Settings, graph_fake: GraphFake) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRAPH_", "GROQ_"))}
    env.update(
        {
            "WHATSAPP_TOKEN": TOKEN,
            "WABA_ID": WABA_ID,
            "META_APP_ID": APP_ID,
            "GRAPH_API_URL": graph_fake.url,
            "GRAPH_API_VERSION": graph_fake.version,
        }
    )
    result = _cli(env, "subscribe")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"subscribed: app {APP_ID}" in result.stdout
