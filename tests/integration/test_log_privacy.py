"""The privacy rule, checked on the real processes' log files: during a real message flow no token, secret, phone
number, profile name or message text appears in any non-DEBUG line of the API or the worker, and every line of the
message's journey carries its correlation id."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.logging import correlation_id
from tests.fakes.graph_fake import TOKEN, GraphFake
from tests.fakes.groq_fake import API_KEY, GroqFake, groq_error
from tests.fakes.server import free_port, wait_for
from tests.integration.conftest import Webhooks
from tests.processes import RedisServer, ServiceProcess, start_api, start_worker
from tests.webhooks import APP_SECRET, MEDIA_FIXTURES, VERIFY_TOKEN, message_body, text_message

pytestmark = pytest.mark.integration

SENDER = "15557654321"
NAME = "Zebulon Quartermaine"
TEXT = "my secret plan is pineapple-42"
CELERY_PREFIX = re.compile(r"^\[[^\]]*: (?P<level>[A-Z]+)/(?P<process>[^\]]+)\] ?(?P<rest>.*)$")


def parse(output: str) -> list[tuple[str, str, dict[str, Any] | None, str]]:
    """(level, process, json event or None, raw line) for every line; Celery wraps our JSON in its own prefix."""
    lines = []
    for raw in output.splitlines():
        level, process, rest = "", "main", raw
        if match := CELERY_PREFIX.match(raw):
            level, process, rest = match["level"], match["process"], match["rest"]
        event = None
        if rest.startswith("{"):
            try:
                event = json.loads(rest)
            except ValueError:
                event = None
        if event is not None:
            level = str(event.get("level", level)).upper()
            process = str(event.get("process", process))
        lines.append((level, process, event, raw))
    return lines


def image_message(caption: str, sender: str, media_id: str) -> dict[str, Any]:
    message = text_message("", sender=sender)
    message.pop("text")
    message.update({"type": "image", "image": {"id": media_id, "mime_type": "image/jpeg", "caption": caption}})
    return message


@pytest.mark.parametrize("kind", ["text", "image"])
def test_no_pii_or_secrets_at_info_and_one_correlation_id_per_journey(
    kind: str,
    api_service: tuple[ServiceProcess, str],
    worker_service: ServiceProcess,
    webhooks: Webhooks,
    graph_fake: GraphFake,
) -> None:
    api, _ = api_service
    if kind == "image":
        graph_fake.add_media("media-pii-1", (MEDIA_FIXTURES / "photo.jpg").read_bytes(), "image/jpeg")
        message = image_message(TEXT, SENDER, "media-pii-1")
    else:
        message = text_message(TEXT, sender=SENDER)
    assert webhooks.post(message_body([message], sender=SENDER, name=NAME)).status_code == 200
    wait_for(lambda: graph_fake.texts_to(SENDER), 30, what="the reply")
    cid = correlation_id(message["id"])

    def done() -> bool:
        return any(
            e and e.get("event") == "job.done" and e.get("correlation_id") == cid
            for _, _, e, _ in parse(worker_service.output())
        )

    wait_for(done, 20, what="job.done of this message")

    forbidden = [SENDER, NAME, TEXT, "pineapple", TOKEN, API_KEY, APP_SECRET, VERIFY_TOKEN, message["id"]]
    logs = {"api": parse(api.output()), "worker": parse(worker_service.output())}
    checked = 0
    for source, lines in logs.items():
        for level, _process, _event, raw in lines:
            if level == "DEBUG":
                continue
            checked += 1
            for secret in forbidden:
                assert secret not in raw, f"{source} log leaks {secret!r}: {raw}"
    assert checked > 5  # the check read real lines

    # The journey: queued in the API, then started, replied and done in one worker process, all with this id.
    api_events = [e for _, _, e, _ in logs["api"] if e and e.get("correlation_id") == cid]
    assert [e["event"] for e in api_events] == ["message.queued"]
    worker_lines = [(p, e) for level, p, e, _ in logs["worker"] if e and level != "DEBUG"]
    start = next(
        i for i, (_, e) in enumerate(worker_lines) if e["event"] == "job.started" and e["correlation_id"] == cid
    )
    process = worker_lines[start][0]
    journey = [e for p, e in worker_lines[start:] if p == process]
    end = next(i for i, e in enumerate(journey) if e["event"] == "job.done")
    journey = journey[: end + 1]
    assert {"job.started", "reply.sent", "job.done"} <= {e["event"] for e in journey}
    assert all(e.get("correlation_id") == cid for e in journey), journey


def test_user_ids_and_group_ids_stay_out_of_the_logs(
    api_service: tuple[ServiceProcess, str], worker_service: ServiceProcess, webhooks: Webhooks, graph_fake: GraphFake
) -> None:
    """Issue #15's identities: a business-scoped user id (username user, no phone) and a group id with its member."""
    user_id, group_id, member = "US.7319999000000000001", "GROUPPRIVACY0001", "15557650001"
    lone = text_message("hello from a username user", sender="")
    lone.pop("from")
    lone["from_user_id"] = user_id
    body = message_body([lone], sender="", name=NAME)
    body["entry"][0]["changes"][0]["value"]["contacts"] = [{"profile": {"name": NAME}, "user_id": user_id}]
    assert webhooks.post(body).status_code == 200
    in_group = text_message("Loopera Desk, a question for the group", sender=member)
    in_group["group_id"] = group_id
    assert webhooks.post(message_body([in_group], sender=member, name=NAME)).status_code == 200
    wait_for(lambda: graph_fake.texts_for(user_id) and graph_fake.texts_to(group_id), 30, what="both replies")
    cids = {correlation_id(lone["id"]), correlation_id(in_group["id"])}
    wait_for(
        lambda: (
            len(
                {
                    e.get("correlation_id")
                    for _, _, e, _ in parse(worker_service.output())
                    if e and e.get("event") == "job.done"
                }
                & cids
            )
            == 2
        ),
        20,
        what="job.done of both messages",
    )
    api, _ = api_service
    for source, output in (("api", api.output()), ("worker", worker_service.output())):
        for level, _process, _event, raw in parse(output):
            if level != "DEBUG":
                for secret in (user_id, group_id, member, NAME):
                    assert secret not in raw, f"{source} log leaks {secret!r}: {raw}"


# --- Celery's own lines and Flower (#11 kind 3) -----------------------------------------------------------------

CELERY_SENDER = "15557650099"
CELERY_NAME = "Wilhelmina Fairweather-Oduya"
CELERY_TEXT = "private-words-mango-77"


@pytest.fixture(scope="module")
def hard_stack(
    service_env: dict[str, str], workdir: Path, redis_server: RedisServer
) -> Iterator[tuple[Webhooks, ServiceProcess, ServiceProcess, str]]:
    """Its own API, prefork worker and Flower on their own database, with time limits short enough to reach."""
    env = {
        **service_env,
        "REDIS_URL": redis_server.url.rsplit("/", 1)[0] + "/6",
        "TASK_SOFT_TIME_LIMIT": "3",
        "TASK_TIME_LIMIT": "5",
        "CELERY_VISIBILITY_TIMEOUT": "60",
        "CONVERSATION_LEASE_SECONDS": "10",
        "LOG_LEVEL": "INFO",
        "FLOWER_BASIC_AUTH": "ops:flower-test-password",
    }
    flower_port = free_port()
    flower = ServiceProcess(["flower"], {**env, "PORT": str(flower_port)}, workdir / "hard-flower.log").start()
    api, api_url = start_api(env, workdir / "hard-api.log")
    worker = start_worker(env, workdir / "hard-worker.log", "--pool", "text", "--concurrency", "1")
    flower_url = f"http://127.0.0.1:{flower_port}"
    wait_for(lambda: _flower_tasks(flower_url) is not None, timeout=60, what="Flower's task API")
    hooks = Webhooks(api_url)
    yield hooks, worker, api, flower_url
    hooks.http.close()
    worker.stop()
    api.stop()
    flower.stop()


def _flower_tasks(url: str) -> dict[str, Any] | None:
    try:
        response = httpx.get(f"{url}/api/tasks", auth=("ops", "flower-test-password"), timeout=5)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


def test_celery_own_lines_and_flower_show_no_personal_data_on_retry_give_up_time_limit_and_crash(
    hard_stack: tuple[Webhooks, ServiceProcess, ServiceProcess, str], graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    hooks, worker, api, flower_url = hard_stack
    sent: list[dict[str, Any]] = []

    def post(words: str) -> None:
        message = text_message(f"{CELERY_TEXT} {words}", sender=CELERY_SENDER)
        sent.append(message)
        assert hooks.post(message_body([message], sender=CELERY_SENDER, name=CELERY_NAME)).status_code == 200

    def answered(count: int) -> Callable[[], bool]:
        return lambda: len(graph_fake.texts_to(CELERY_SENDER)) >= count

    # Retry: one Groq 503, then the answer.
    groq_fake.faults.add("chat", groq_error(503, "service_unavailable", "down", "internal_server_error"))
    post("retry")
    wait_for(answered(1), timeout=30, what="the answer after a retry")
    # Give-up: more deferrals than Celery's default retry cap (3), each a short Groq 429 cooldown.
    groq_fake.faults.add(
        "chat", groq_error(429, "rate_limit_exceeded", "slow down", "requests", **{"retry-after": "0.2"}), times=5
    )
    post("deferrals")
    wait_for(answered(2), timeout=40, what="an answer or an apology after the deferrals")
    # Soft time limit: Groq answers after the task's 3 s.
    groq_fake.chat_delay = 4.0
    post("slow")
    worker.wait_for_output("oft time limit", timeout=30)  # Celery's own warning ("Soft time limit (3s) exceeded")
    groq_fake.chat_delay = 0.0
    wait_for(answered(3), timeout=40, what="an answer or the apology after the soft time limit")
    # Crash: the pool process dies mid-job (Celery's WorkerLostError in the parent).
    calls = len(groq_fake.calls_to("chat/completions"))
    groq_fake.hold_chat.set()
    post("crash")
    wait_for(lambda: len(groq_fake.calls_to("chat/completions")) > calls, what="the job to reach Groq")
    assert worker.process is not None
    pool = subprocess.run(["pgrep", "-P", str(worker.process.pid)], capture_output=True, text=True, check=False)
    for child in pool.stdout.split():
        os.kill(int(child), signal.SIGKILL)
    worker.wait_for_output("WorkerLostError", timeout=30)
    groq_fake.hold_chat.clear()
    groq_fake.release_chat.set()
    wait_for(answered(4), timeout=40, what="the answer after the crash")

    output = worker.output()
    assert "Retry in" in output or "retry" in output.lower()  # Celery's own retry lines are there to check
    forbidden = [CELERY_SENDER, CELERY_NAME, CELERY_TEXT, "mango", *(m["id"] for m in sent)]
    checked = 0
    for source, text in {"worker": output, "api": api.output()}.items():
        for level, _process, _event, raw in parse(text):
            if level == "DEBUG":
                continue
            checked += 1
            for secret in forbidden:
                assert secret not in raw, f"{source} log leaks {secret!r}: {raw}"
    assert checked > 10

    tasks = wait_for(lambda: _flower_tasks(flower_url), what="Flower's task list")
    shown = json.dumps(tasks)
    assert len(tasks) >= 4, shown
    # The retried and redelivered tasks are there, with what Flower shows of their arguments.
    assert any(task.get("retries") or task.get("children") for task in tasks.values()), shown
    assert all(task.get("args") for task in tasks.values()), shown
    for secret in forbidden:
        assert secret not in shown, f"Flower shows {secret!r}"
