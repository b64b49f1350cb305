"""Railway config-as-code: one file per service, each pointing at an existing Dockerfile, workers drain longer
than the longest job, HTTP health checks only where there is an HTTP server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.config import Settings
from tests.deploy.dockerfiles import REPO

CONFIGS = sorted((REPO / "deploy" / "railway").glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_one_config_per_service() -> None:
    assert {p.stem for p in CONFIGS} == {"api", "worker-text", "worker-audio", "worker-vision", "flower"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_points_at_a_real_dockerfile_and_uses_numbers(path: Path) -> None:
    config = load(path)
    assert config["build"]["builder"] == "DOCKERFILE"
    assert (REPO / config["build"]["dockerfilePath"]).is_file()
    # Railway's parser rejects numeric settings given as strings (railwayapp/docs#1243).
    for key in ("drainingSeconds", "overlapSeconds", "healthcheckTimeout", "numReplicas"):
        if key in config["deploy"]:
            assert isinstance(config["deploy"][key], int), key
    # The exec-form CMD of the image is the start command: a startCommand may run through a shell.
    assert "startCommand" not in config["deploy"]


def test_workers_drain_longer_than_the_longest_job() -> None:
    limit = Settings(_env_file=None).task_time_limit
    for path in CONFIGS:
        if path.stem.startswith("worker-"):
            deploy = load(path)["deploy"]
            assert deploy["drainingSeconds"] > limit
            assert "healthcheckPath" not in deploy  # no HTTP server on $PORT in a worker


def test_audio_workers_have_replicas() -> None:
    assert load(REPO / "deploy" / "railway" / "worker-audio.json")["deploy"]["numReplicas"] >= 2


def test_http_services_gate_deploys_on_health() -> None:
    assert load(REPO / "deploy" / "railway" / "api.json")["deploy"]["healthcheckPath"] == "/ready"
    assert load(REPO / "deploy" / "railway" / "flower.json")["deploy"]["healthcheckPath"] == "/healthcheck"
