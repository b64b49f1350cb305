"""deploy/piper_voice.py, the worker image's voice fetcher, against a loopback server laid out like Hugging Face's
"resolve" URLs: the right files land in place, a wrong digest or a broken config leaves nothing behind."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.deploy.dockerfiles import REPO
from tests.fakes.server import LoopbackServer

VOICE = "es_XX-test-medium"
MODEL = b"onnx-model-bytes" * 1000
CONFIG = {"audio": {"sample_rate": 22050}, "espeak": {"voice": "es"}}
FILES = {
    f"/resolve/rev1/es/es_XX/test/medium/{VOICE}.onnx": MODEL,
    f"/resolve/rev1/es/es_XX/test/medium/{VOICE}.onnx.json": json.dumps(CONFIG).encode(),
    "/resolve/rev1/es/es_XX/test/medium/MODEL_CARD": b"# Model card\n* License: CC0\n",
    f"/resolve/rev2/es/es_XX/test/medium/{VOICE}.onnx": MODEL,
    f"/resolve/rev2/es/es_XX/test/medium/{VOICE}.onnx.json": b"{}",
    "/resolve/rev2/es/es_XX/test/medium/MODEL_CARD": b"card",
}


@pytest.fixture(scope="module")
def hub() -> Iterator[str]:
    async def serve(request: Request) -> Response:
        body = FILES.get(request.url.path)
        return Response(body, media_type="application/octet-stream") if body is not None else Response(status_code=404)

    server = LoopbackServer(Starlette(routes=[Route("/{path:path}", serve)]))
    server.start()
    yield server.url + "/resolve"
    server.stop()


def fetch(hub: str, dest: Path, revision: str = "rev1", sha256: str = "") -> subprocess.CompletedProcess[str]:
    digest = sha256 or hashlib.sha256(MODEL).hexdigest()
    args = ["--voice", VOICE, "--path", "es/es_XX/test/medium", "--revision", revision, "--sha256", digest]
    return subprocess.run(
        [sys.executable, str(REPO / "deploy" / "piper_voice.py"), *args, "--dest", str(dest), "--base-url", hub],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_the_voice_its_config_and_its_licence_land_in_place(hub: str, tmp_path: Path) -> None:
    result = fetch(hub, tmp_path / "voices")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "voices").iterdir()) == [
        f"{VOICE}.MODEL_CARD",
        f"{VOICE}.onnx",
        f"{VOICE}.onnx.json",
    ]
    assert (tmp_path / "voices" / f"{VOICE}.onnx").read_bytes() == MODEL


def test_a_model_with_another_digest_is_refused_and_nothing_is_left(hub: str, tmp_path: Path) -> None:
    result = fetch(hub, tmp_path / "voices", sha256="0" * 64)
    assert result.returncode == 1 and "SHA-256" in result.stderr
    assert list((tmp_path / "voices").iterdir()) == []


def test_a_config_without_a_sample_rate_is_refused(hub: str, tmp_path: Path) -> None:
    result = fetch(hub, tmp_path / "voices", revision="rev2")
    assert result.returncode == 1 and "sample_rate" in result.stderr
    assert list((tmp_path / "voices").iterdir()) == []


def test_a_missing_revision_fails_the_build(hub: str, tmp_path: Path) -> None:
    result = fetch(hub, tmp_path / "voices", revision="nope")
    assert result.returncode == 1 and "404" in result.stderr
