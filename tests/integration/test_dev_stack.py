"""`make run` tells the truth, on real processes: it starts Redis, the API, three pools and the sandbox with only a
Groq key, prints its URLs once every component answers, exits non-zero with the child's reason when one dies or
cannot start, and stops everything on Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.dev_stack import DevStack
from tests.fakes.groq_fake import API_KEY, GroqFake
from tests.fakes.server import wait_for

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:  # reaped between the signal and the read
        return False


def _replies(stack: DevStack, address: str) -> list[dict]:
    messages = httpx.get(f"{stack.sandbox_url}/api/conversations/{address}", timeout=5).json()["messages"]
    return [m for m in messages if m["direction"] == "out"]


@pytest.fixture
def stacks(tmp_path: Path) -> Iterator[list[DevStack]]:
    started: list[DevStack] = []
    yield started
    for stack in started:
        stack.stop()


def test_only_a_groq_key_serves_the_sandbox_and_ctrl_c_stops_everything(
    tmp_path: Path, groq_fake: GroqFake, stacks: list[DevStack]
) -> None:
    stack = DevStack(tmp_path / "run", {"GROQ_API_KEY": API_KEY, "GROQ_BASE_URL": groq_fake.url})
    stacks.append(stack.start())
    stack.wait_ready()
    out = stack.output()
    # The URLs come only after every component answered its health check.
    assert out.index("make run: ready") > max(out.find(" api | "), 0)
    assert f"http://127.0.0.1:{stack.sandbox_port}/" in out
    assert stack.answers("/api/health") and stack.answers("/health", stack.api_url)
    assert stack.answers("/") and "GROQ_API_KEY" not in httpx.get(f"{stack.sandbox_url}/api/info").json()["missing"]
    children = stack.children()
    assert set(children) == {"redis", "api", "text", "audio", "vision", "sandbox"}

    sent = httpx.post(f"{stack.sandbox_url}/api/messages", json={"from": "15550001111", "text": "ping"}, timeout=10)
    assert sent.status_code == 202 and sent.json()["message_id"].startswith("wamid.")
    reply = wait_for(lambda: _replies(stack, "15550001111"), timeout=60, what="the model's answer")
    assert reply[0]["text"] == "You said: ping" and reply[0]["reply_to"] == sent.json()["message_id"]

    stack.ctrl_c()
    time.sleep(0.3)
    stack.ctrl_c()  # an impatient second Ctrl-C must not cut the shutdown short
    assert stack.wait_exit() == 0
    assert "make run: stopping" in stack.output()
    # make run's own output (children's lines carry their name in front) has no traceback.
    assert not any(line.startswith("Traceback") for line in stack.output().splitlines())
    assert not any(_alive(pid) for pid in children.values()), stack.output()[-2000:]


def test_without_a_groq_key_it_starts_and_says_what_is_missing_then_a_dying_child_ends_the_run(
    tmp_path: Path, stacks: list[DevStack]
) -> None:
    stack = DevStack(tmp_path / "run", {})
    stacks.append(stack.start())
    stack.wait_ready()
    assert httpx.get(f"{stack.sandbox_url}/api/info").json()["missing"] == ["GROQ_API_KEY"]
    sent = httpx.post(f"{stack.sandbox_url}/api/messages", json={"from": "15550002222", "text": "hello"}, timeout=10)
    assert sent.status_code == 202
    reply = wait_for(lambda: _replies(stack, "15550002222"), timeout=60, what="the missing-key answer")
    assert "GROQ_API_KEY" in reply[0]["text"]
    time.sleep(2)
    assert len(_replies(stack, "15550002222")) == 1  # one clear answer, no retries

    children = stack.children()
    os.kill(children["text"], signal.SIGKILL)
    code = stack.wait_exit()
    assert code != 0
    assert "make run: text exited with code" in stack.output()
    assert not any(_alive(pid) for pid in children.values())


def test_a_child_that_cannot_start_fails_the_run_with_its_reason(tmp_path: Path, stacks: list[DevStack]) -> None:
    # The audio pool checks its voice routes at start; a malformed TTS_VOICES stops it with one clear line.
    stack = DevStack(tmp_path / "run", {"TTS_VOICES": "en=nosuchbackend:voice"})
    stacks.append(stack.start())
    code = stack.wait_exit(timeout=120)
    out = stack.output()
    assert code != 0
    assert "make run: audio exited with code" in out and "TTS_VOICES" in out.split("make run: audio exited")[1]
    assert "make run: ready" not in out and "make run: API on" not in out


def test_components_that_do_not_answer_in_time_fail_the_run(tmp_path: Path, stacks: list[DevStack]) -> None:
    stack = DevStack(tmp_path / "run", {}, startup_timeout=0.5)
    stacks.append(stack.start())
    assert stack.wait_exit(timeout=60) == 1
    out = stack.output()
    assert "did not answer its health check within 0.5 s" in out
    assert "make run: ready" not in out


def test_a_port_in_use_is_named_before_anything_starts(tmp_path: Path, stacks: list[DevStack]) -> None:
    stack = DevStack(tmp_path / "run", {})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", stack.sandbox_port))
        taken.listen()
        stacks.append(stack.start())
        code = stack.wait_exit(timeout=30)
    assert code == 2
    assert f"port {stack.sandbox_port} (SANDBOX_PORT) is already in use" in stack.output()
    assert "starting" not in stack.output()


def test_with_every_meta_setting_it_runs_against_meta_without_the_sandbox(
    tmp_path: Path, stacks: list[DevStack]
) -> None:
    meta = {"WHATSAPP_TOKEN": "EAAG-test", "APP_SECRET": "a" * 32, "VERIFY_TOKEN": "v" * 16, "PHONE_NUMBER_ID": "1234"}
    stack = DevStack(tmp_path / "run", {**meta, "GROQ_API_KEY": API_KEY})
    stacks.append(stack.start())
    stack.wait_ready()
    out = stack.output()
    assert "against Meta" in out and "Chat with the bot" not in out
    assert set(stack.children()) == {"redis", "api", "text", "audio", "vision"}
    assert not stack.answers("/api/health")
    # The API verifies Meta's webhook challenge with the VERIFY_TOKEN from .env, not a generated one.
    challenge = {"hub.mode": "subscribe", "hub.verify_token": "v" * 16, "hub.challenge": "42"}
    assert httpx.get(f"{stack.api_url}/webhook", params=challenge).text == "42"
    stack.ctrl_c()
    assert stack.wait_exit() == 0


def test_a_real_token_without_the_other_meta_settings_is_refused(tmp_path: Path, stacks: list[DevStack]) -> None:
    stack = DevStack(tmp_path / "run", {"WHATSAPP_TOKEN": "EAAGreal-looking-token"})
    stacks.append(stack.start())
    assert stack.wait_exit(timeout=30) == 2
    assert "empty WHATSAPP_TOKEN to use the sandbox" in stack.output()
