"""The images: hadolint-clean, uv in two steps, non-root, exec-form CMD into `loopera`, a HEALTHCHECK, and the API
image's dependency set free of the worker stack."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.dockerfiles import IMAGES, REPO, cmd, env, healthcheck, instructions, sync_extras

HADOLINT = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")


@pytest.mark.parametrize("name", sorted(IMAGES.values()))
def test_hadolint_is_clean(name: str) -> None:
    result = subprocess.run([HADOLINT, "--no-color", str(REPO / name)], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    """The lint is live: a shell-form CMD and root user are reported."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install loopera\nCMD loopera api\n")
    result = subprocess.run([HADOLINT, "--no-color", str(bad)], capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # latest tag


@pytest.mark.parametrize("role", sorted(IMAGES))
def test_image_shape(role: str) -> None:
    path = REPO / IMAGES[role]
    steps = instructions(path)
    keywords = [s.keyword for s in steps]
    # Exec form straight into our CLI: the CLI reads PORT, so no shell is needed and signals reach the process.
    assert cmd(path)[:2] == ["loopera", role]
    assert healthcheck(path) == ["loopera", "healthcheck", role]
    # Non-root, numeric so Kubernetes-style runAsNonRoot can verify it.
    user = [s.args for s in steps if s.keyword == "USER"][-1]
    assert user.split(":")[0].isdigit() and user.split(":")[0] != "0"
    # Dependencies from the lock first (cached layer), then the code.
    syncs = [i for i, s in enumerate(steps) if s.keyword == "RUN" and "uv sync" in s.args]
    code_copies = [
        i
        for i, s in enumerate(steps)
        if s.keyword == "COPY" and s.args.split()[0] in ("api", "workers", "shared", "loopera")
    ]
    assert len(syncs) == 2 and "--no-install-project" in steps[syncs[0]].args
    assert syncs[0] < min(code_copies) < syncs[1]
    assert all("--frozen" in steps[i].args and "--no-dev" in steps[i].args for i in syncs)
    extras = [role, "piper"] if role == "worker" else [role]  # the worker image speaks local Piper voices too
    assert sync_extras(path) == [extras, extras]
    assert keywords.index("USER") > syncs[1]


def test_only_the_worker_image_has_ffmpeg() -> None:
    assert "ffmpeg" in (REPO / "Dockerfile.worker").read_text()
    assert "libopus" in (REPO / "Dockerfile.worker").read_text()
    for role in ("api", "flower"):
        runs = " ".join(s.args for s in instructions(REPO / IMAGES[role]) if s.keyword == "RUN")
        assert "apt-get" not in runs and "ffmpeg" not in runs


def _locked_packages(extra: str) -> set[str]:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv not installed")
    out = subprocess.run(
        [uv, "export", "--frozen", "--no-dev", "--no-hashes", "--extra", extra, "--no-emit-project"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {line.split("==")[0].split("[")[0].strip().lower() for line in out.splitlines() if "==" in line}


def test_api_image_dependency_set_has_no_worker_stack() -> None:
    api = _locked_packages("api")
    worker = _locked_packages("worker")
    assert {"fastapi", "uvicorn", "redis"} <= api
    assert not api & {"celery", "kombu", "groq", "ffmpeg-python", "pillow", "flower", "piper-tts", "onnxruntime"}
    assert {"celery", "groq", "ffmpeg-python"} <= worker  # the comparison is meaningful


def _args(path: Path) -> dict[str, str]:
    values = {}
    for step in instructions(path):
        if step.keyword == "ARG":
            name, _, default = step.args.partition("=")
            values[name] = default
    return values


def test_the_worker_image_ships_a_spanish_piper_voice_pinned_by_revision() -> None:
    """Spanish voice replies out of the box: the voice is fetched at build time by our fetch script, pinned by
    revision and SHA-256, into PIPER_VOICES_DIR, and TTS_VOICES routes Spanish to it (a route the worker accepts)."""
    from workers.voice.routing import Backend, parse_tts_voices

    path = REPO / "Dockerfile.worker"
    args = _args(path)
    assert re.fullmatch(r"[0-9a-f]{64}", args["PIPER_VOICE_SHA256"])
    assert args["PIPER_VOICES_REVISION"] and args["PIPER_VOICE"].startswith("es_")
    (fetch,) = [s.args for s in instructions(path) if s.keyword == "RUN" and "piper_voice.py" in s.args]
    for flag in ("--voice", "--path", "--revision", "--sha256", "--dest /opt/piper-voices"):
        assert flag in fetch
    assert (REPO / "deploy" / "piper_voice.py").is_file()
    environment = env(path)
    assert environment["PIPER_VOICES_DIR"] == "/opt/piper-voices"
    routes = parse_tts_voices(environment["TTS_VOICES"])
    route = routes["es"]
    assert route is not None and route.backend is Backend.PIPER and route.voice == args["PIPER_VOICE"]
