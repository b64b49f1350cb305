"""Human handoff on real processes: a user asks for a person (reply, pause, signed webhook retried after a failure),
messages while paused are remembered and never answered (also an answer computed when the pause began, and across
a worker SIGKILL), `loopera handoff list|resume` gives the conversation back with its memory whole."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.graph_fake import GraphFake
from tests.fakes.groq_fake import GroqFake
from tests.fakes.server import LoopbackServer, wait_for
from tests.processes import RedisServer, ServiceProcess, fake_backed_env, start_worker
from tests.webhooks import conversation_of, encode, message_body, signed_headers, text_message
from workers.text.phrases import phrase

pytestmark = pytest.mark.integration

SECRET = "handoff-test-secret"
ADMIN_TOKEN = "admin-test-token-7f3a"


class Receiver:
    """The operator's system behind HANDOFF_WEBHOOK_URL: records each POST; answers 503 `failures` times first."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.failures = 0
        self._lock = threading.Lock()
        self.server = LoopbackServer(Starlette(routes=[Route("/hook", self._hook, methods=["POST"])]))

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        with self._lock:
            self.posts.append((dict(request.headers), body))
            if self.failures:
                self.failures -= 1
                return Response(status_code=503)
        return Response(status_code=204)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.server.start()
    yield receiver
    receiver.server.stop()


@pytest.fixture(scope="module")
def env(own_redis: RedisServer, graph_fake: GraphFake, groq_fake: GroqFake, receiver: Receiver) -> dict[str, str]:
    return fake_backed_env(own_redis.url, graph_fake.url, graph_fake.version, groq_fake.url) | {
        "HANDOFF_WEBHOOK_URL": receiver.server.url + "/hook",
        "HANDOFF_WEBHOOK_SECRET": SECRET,
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "RATE_LIMITS_ENABLED": "false",
    }


@pytest.fixture
def rds(
    own_redis: RedisServer, graph_fake: GraphFake, groq_fake: GroqFake, receiver: Receiver
) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(own_redis.url)
    client.flushdb()
    graph_fake.reset()
    groq_fake.reset()
    receiver.posts.clear()
    receiver.failures = 0
    yield client
    groq_fake.release_chat.set()
    client.close()


@pytest.fixture
def workers(env: dict[str, str], tmp_path: Path) -> Iterator[Callable[[], ServiceProcess]]:
    started: list[ServiceProcess] = []

    def start() -> ServiceProcess:
        name = f"w{len(started)}"
        process = start_worker(env, tmp_path / f"{name}.log", "--pool", "all", "--concurrency", "1", "--name", name)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def post(api: str, user: str, text: str) -> None:
    raw = encode(message_body([text_message(text, sender=user)], sender=user))
    assert httpx.post(f"{api}/webhook", content=raw, headers=signed_headers(raw), timeout=10).status_code == 200


def idle(client: redis.Redis, user: str) -> bool:
    inbox = f"lp:inbox:{conversation_of(user)}"
    return not client.exists(inbox) and client.zscore("lp:leases", inbox) is None


def memory(client: redis.Redis, user: str) -> list[tuple[str, str]]:
    turns = client.lrange(f"lp:mem:{conversation_of(user)}", 0, -1)
    return [(t["role"], t["content"]) for t in map(json.loads, turns)]


def loopera(env: dict[str, str], *args: str) -> str:
    command = [sys.executable, "-m", "loopera.cli", "handoff", *args]
    return subprocess.run(command, env=os.environ | env, capture_output=True, text=True, check=True).stdout


def test_asking_for_a_person_replies_once_pauses_and_notifies_a_signed_webhook_with_retries(
    api: str,
    rds: redis.Redis,
    workers: Callable[[], ServiceProcess],
    env: dict[str, str],
    graph_fake: GraphFake,
    groq_fake: GroqFake,
    receiver: Receiver,
) -> None:
    workers()
    user = "15558880001"
    post(api, user, "My order 4411 never arrived")
    wait_for(lambda: len(graph_fake.texts_to(user)) == 1, what="the first answer")
    receiver.failures = 1  # the first POST fails: the worker retries it after a backoff
    post(api, user, "Humano")
    wait_for(lambda: len(graph_fake.texts_to(user)) == 2, what="the handoff reply")
    assert graph_fake.texts_to(user)[1] == phrase("command_handoff", "es")
    wait_for(lambda: len(receiver.posts) == 2, timeout=10, what="the webhook, retried once")

    headers, body = receiver.posts[-1]
    expected = hmac.new(SECRET.encode(), headers["x-loopera-timestamp"].encode() + b"." + body, hashlib.sha256)
    assert headers["x-loopera-signature"] == "sha256=" + expected.hexdigest()
    payload: dict[str, Any] = json.loads(body)
    assert payload["event"] == "handoff"
    assert (payload["conversation"], payload["wa_id"], payload["user_id"]) == (conversation_of(user), user, None)
    assert [t["content"] for t in payload["last_turns"]] == [
        "My order 4411 never arrived",
        "You said: My order 4411 never arrived",
        "Humano",
    ]

    # Paused: the user's next messages are remembered, in order, never answered and never sent to a model.
    wait_for(lambda: idle(rds, user), what="the handoff job done")
    post(api, user, "Hello? Anyone?")
    post(api, user, "Still waiting")
    wait_for(lambda: idle(rds, user) and len(memory(rds, user)) == 6, what="both paused messages remembered")
    assert len(graph_fake.texts_to(user)) == 2
    assert len(groq_fake.calls_to("chat/completions")) == 1
    assert conversation_of(user) in loopera(env, "list")

    assert loopera(env, "resume", user).strip() == "resumed"
    assert loopera(env, "list").strip() == "no paused conversations"
    post(api, user, "Are you back?")
    wait_for(lambda: len(graph_fake.texts_to(user)) == 3, what="the answer after the resume")
    sent = groq_fake.calls_to("chat/completions")[-1].body["messages"]
    assert [m["content"] for m in sent[1:]][-3:] == ["Hello? Anyone?", "Still waiting", "Are you back?"]
    assert len(receiver.posts) == 2  # notified once


def test_a_pause_blocks_an_answer_being_computed_and_holds_across_a_worker_sigkill(
    api: str,
    rds: redis.Redis,
    workers: Callable[[], ServiceProcess],
    env: dict[str, str],
    graph_fake: GraphFake,
    groq_fake: GroqFake,
) -> None:
    worker = workers()
    user = "15558880002"
    groq_fake.hold_chat.set()
    post(api, user, "Compute something slowly")
    wait_for(lambda: groq_fake.calls_to("chat/completions"), what="the worker to reach the model")
    loopera(env, "pause", user)  # an operator takes over while the answer is being computed
    assert worker.process is not None
    for child in subprocess.run(
        ["pgrep", "-P", str(worker.process.pid)], check=False, capture_output=True, text=True
    ).stdout.split():
        os.kill(int(child), signal.SIGKILL)  # the pool process dies mid-answer
    groq_fake.hold_chat.clear()
    groq_fake.release_chat.set()
    post(api, user, "Hello?")
    wait_for(lambda: idle(rds, user), timeout=40, what="both messages handled after the kill")

    assert graph_fake.texts_to(user) == []  # the answer computed before the pause never went out
    # Both user messages are kept (in order, once); the answer nobody received is not.
    assert memory(rds, user) == [("user", "Compute something slowly"), ("user", "Hello?")]
    loopera(env, "resume", user)
    post(api, user, "Now?")
    wait_for(lambda: graph_fake.texts_to(user), what="the answer after the resume")
    assert graph_fake.texts_to(user) == ["You said: Now?"]
    wait_for(lambda: idle(rds, user) and len(memory(rds, user)) == 4, what="the turn remembered")
    contents = [content for _, content in memory(rds, user)]
    assert contents.count("Hello?") == 1
    assert contents.count("Now?") == 1


def echo_body(user: str, text: str) -> dict[str, Any]:
    """Meta's smb_message_echoes webhook (tests/fixtures/meta-webhooks/outgoing_message.json) for a person's reply."""
    body = message_body([], sender=user)
    value = body["entry"][0]["changes"][0]["value"]
    del value["messages"]
    value["message_echoes"] = [
        {
            "from": "15550783881",
            "to": user,
            "id": f"wamid.echo{time.time_ns()}",
            "timestamp": str(int(time.time())),
            "type": "text",
            "text": {"body": text},
        }
    ]
    body["entry"][0]["changes"][0]["field"] = "smb_message_echoes"
    return body


def test_a_person_replying_from_the_business_app_pauses_the_bot_even_mid_answer(
    api: str,
    rds: redis.Redis,
    workers: Callable[[], ServiceProcess],
    env: dict[str, str],
    graph_fake: GraphFake,
    groq_fake: GroqFake,
) -> None:
    workers()
    user = "15558880003"
    groq_fake.hold_chat.set()
    post(api, user, "Is the shop open on Sunday?")
    wait_for(lambda: groq_fake.calls_to("chat/completions"), what="the answer being computed")
    raw = encode(echo_body(user, "Hi, this is Maria from the shop: yes, 10 to 2."))
    assert httpx.post(f"{api}/webhook", content=raw, headers=signed_headers(raw), timeout=10).status_code == 200
    assert conversation_of(user) in loopera(env, "list")  # paused by the API at once, before the echo's job runs
    groq_fake.hold_chat.clear()
    groq_fake.release_chat.set()
    post(api, user, "Great, thanks Maria")
    wait_for(lambda: idle(rds, user) and len(memory(rds, user)) == 3, what="all three messages handled")

    assert graph_fake.texts_to(user) == []  # neither the computed answer nor anything later went out
    assert memory(rds, user) == [
        ("user", "Is the shop open on Sunday?"),
        ("assistant", "Hi, this is Maria from the shop: yes, 10 to 2."),
        ("user", "Great, thanks Maria"),
    ]
    assert len(groq_fake.calls_to("chat/completions")) == 1

    loopera(env, "resume", user)
    post(api, user, "And on Monday?")
    wait_for(lambda: graph_fake.texts_to(user), what="the bot answering again")
    sent = groq_fake.calls_to("chat/completions")[-1].body["messages"]
    assert [m["content"] for m in sent[1:]] == [
        "Is the shop open on Sunday?",
        "Hi, this is Maria from the shop: yes, 10 to 2.",
        "Great, thanks Maria",
        "And on Monday?",
    ]


def test_the_admin_endpoint_needs_its_token_and_pauses_lists_and_resumes(
    api: str, rds: redis.Redis, workers: Callable[[], ServiceProcess], graph_fake: GraphFake
) -> None:
    user = "15558880004"
    with httpx.Client(base_url=api, timeout=10) as http:
        assert http.get("/admin/handoff").status_code == 401
        assert http.get("/admin/handoff", headers={"Authorization": "Bearer wrong"}).status_code == 403
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        assert http.post(f"/admin/handoff/{user}/pause", params={"minutes": 5}, headers=auth).status_code == 200
        listed = http.get("/admin/handoff", headers=auth).json()["paused"]
        assert [entry["conversation"] for entry in listed] == [conversation_of(user)]
        workers()
        post(api, user, "Anyone?")
        wait_for(lambda: idle(rds, user) and memory(rds, user), what="the paused message remembered")
        assert graph_fake.texts_to(user) == []
        assert http.post(f"/admin/handoff/{user}/resume", headers=auth).json()["was_paused"] is True
        assert http.get("/admin/handoff", headers=auth).json() == {"paused": []}
    post(api, user, "Now?")
    wait_for(lambda: graph_fake.texts_to(user) == ["You said: Now?"], what="the answer after the resume")
