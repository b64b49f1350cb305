"""The 24-hour customer service window (issue #15): no free-form send outside it, the reason recorded, an answer kept
for the user's next message, an approved template instead if configured, nothing dead-lettered. Real API, worker
processes and Redis; the Graph fake accepts any send, so a send outside the window would show up there."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.fakes.graph_fake import GraphFake, graph_error
from tests.fakes.server import wait_for
from tests.processes import ServiceProcess, start_api, start_worker
from tests.webhooks import conversation_of, encode, message_body, signed_headers, text_message

pytestmark = pytest.mark.integration

DAY = 24 * 3600


def old_text(words: str, sender: str, age_seconds: float) -> dict:
    message = text_message(words, sender=sender)
    message["timestamp"] = str(int(time.time() - age_seconds))
    return message_body([message], sender=sender)


def dead_letters(client: redis.Redis) -> list[bytes]:
    return client.lrange("lp:dlq", 0, -1)


def test_a_backlog_message_older_than_the_window_gets_no_delay_notice(
    webhooks, worker_service: ServiceProcess, graph_fake: GraphFake, redis_client: redis.Redis
) -> None:
    """Meta's backlog after an outage: the delay notice for a 25-hour-old message would be refused (131047)."""
    user = "15550170001"
    assert webhooks.post(old_text("Are you open today?", user, DAY + 3600)).status_code == 200
    assert webhooks.post(message_body([text_message("ping", sender=user)], sender=user)).status_code == 200
    wait_for(lambda: graph_fake.texts_to(user), what="the answer to the fresh message")
    assert graph_fake.texts_to(user) == ["You said: ping"]
    assert dead_letters(redis_client) == []
    assert not redis_client.exists(f"lp:undelivered:{conversation_of(user)}")  # a delay notice is not worth keeping


@pytest.fixture(scope="module")
def window_stack(
    service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, redis.Redis]]:
    """An API and worker on their own Redis database, answering late messages (STALE_MESSAGE_SECONDS above the
    window) with a template configured: the model's answer itself then falls outside the window."""
    workdir: Path = tmp_path_factory.mktemp("window")
    url = service_env["REDIS_URL"].rsplit("/", 1)[0] + "/4"
    env = service_env | {
        "REDIS_URL": url,
        "STALE_MESSAGE_SECONDS": str(3 * DAY),
        "OUTSIDE_WINDOW_TEMPLATE": "hello_world",
    }
    api, api_url = start_api(env, workdir / "api.log")
    worker = start_worker(env, workdir / "worker.log", "--pool", "all", "--concurrency", "2")
    client = redis.Redis.from_url(url)
    yield api_url, client
    client.close()
    worker.stop()
    api.stop()


def test_an_answer_outside_the_window_is_kept_for_the_next_message_and_a_template_sent(
    window_stack: tuple[str, redis.Redis], graph_fake: GraphFake
) -> None:
    api_url, client = window_stack
    client.flushdb()
    user = "15550170002"

    def post(body: dict) -> int:
        raw = encode(body)
        return httpx.post(f"{api_url}/webhook", content=raw, headers=signed_headers(raw), timeout=10).status_code

    assert post(old_text("What is the capital of Peru?", user, DAY + 600)) == 200
    kept = f"lp:undelivered:{conversation_of(user)}"
    wait_for(lambda: client.llen(kept) == 1, what="the answer kept")

    def templates() -> list[dict]:
        return [m for m in graph_fake.sent_messages() if m.get("to") == user and m["type"] == "template"]

    # The answer is kept before the template goes out: wait for the send, not only for the keep. A send that failed
    # and is retried may take the whole SEND_CONFIRM_WAIT_SECONDS on a loaded host: wait beyond it.
    wait_for(templates, timeout=60, what="the template")
    assert [t["template"]["name"] for t in templates()] == ["hello_world"]
    assert graph_fake.texts_to(user) == []  # nothing free-form outside the window

    assert post(message_body([text_message("Thanks!", sender=user)], sender=user)) == 200
    wait_for(lambda: len(graph_fake.texts_to(user)) == 2, what="the kept answer, then the new one")
    first, second = [m for m in graph_fake.sent_messages() if m.get("to") == user and m["type"] == "text"]
    assert first["text"]["body"] == (
        "Earlier you asked “What is the capital of Peru?”. Here is the answer I could not deliver then:\n\n"
        "You said: What is the capital of Peru?"
    )
    assert "context" not in first
    assert second["text"]["body"] == "You said: Thanks!" and "context" in second
    assert not client.exists(kept) and dead_letters(client) == []


def test_a_template_send_that_fails_once_is_sent_by_the_retry(
    window_stack: tuple[str, redis.Redis], graph_fake: GraphFake
) -> None:
    """One template per conversation per day, but the day's marker belongs to the message that sends it: a retry of
    that message (its first send failed) still sends it, once."""
    api_url, client = window_stack
    client.flushdb()
    user = "15550170003"
    graph_fake.faults.add("messages:template", graph_error(131000, "Something went wrong", status=500))
    raw = encode(old_text("Do you ship to Chile?", user, DAY + 600))
    assert httpx.post(f"{api_url}/webhook", content=raw, headers=signed_headers(raw), timeout=10).status_code == 200

    def templates() -> list[dict]:
        return [m for m in graph_fake.sent_messages() if m.get("to") == user and m["type"] == "template"]

    wait_for(graph_fake.failed_sends, what="the first template send, failed")
    wait_for(templates, timeout=60, what="the template, sent by the retry")
    assert len(templates()) == 1 and graph_fake.texts_to(user) == []
    # The retried job kept its answer again; the user still gets it once, with their next message.
    raw = encode(message_body([text_message("Thanks!", sender=user)], sender=user))
    assert httpx.post(f"{api_url}/webhook", content=raw, headers=signed_headers(raw), timeout=10).status_code == 200
    wait_for(lambda: len(graph_fake.texts_to(user)) == 2, what="the kept answer, then the new one")
    kept, new = graph_fake.texts_to(user)
    assert "Do you ship to Chile?" in kept and new == "You said: Thanks!"
    assert len(templates()) == 1 and dead_letters(client) == []
