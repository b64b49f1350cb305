"""One user cannot starve the rest (issue 16, kind 2), on a real API and text worker with the shared limiter on.

Checked by order, not by wall time: the Groq fake logs every chat call in arrival order, and each call's last
message names its sender. The chat budget is tiny (3 requests per 2 s window) so the flood outgrows it at once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.fakes.graph_fake import GraphFake
from tests.fakes.groq_fake import GroqFake
from tests.fakes.server import wait_for
from tests.integration.conftest import Webhooks
from tests.processes import RedisServer, ServiceProcess, start_api, start_worker
from tests.webhooks import conversation_of, message_body, text_message

pytestmark = pytest.mark.integration

FLOODER = "15550160000"
OTHERS = ["15550160001", "15550160002", "15550160003"]
PER_USER = 40  # USER_MESSAGES_PER_WINDOW: the flood's first 40 messages go to the model
RPM = 20
# Each other user's call must come within this many chat calls after their message: theirs, plus one flood call
# that may be in flight as they write. With the fair share the flooder, who holds the whole budget, gets nothing
# more while they wait (its share is 20 / 4). Without it, the flooder's chain of jobs (each starts the moment the
# previous one ends) takes the slots that free up during the others' deferral jitter: positions of 8-10 were seen.
WITHIN = 4


@dataclass
class FairStack:
    webhooks: Webhooks
    worker: ServiceProcess
    redis: redis.Redis


def stack_env(service_env: dict[str, str], redis_url: str, fair: bool) -> dict[str, str]:
    return service_env | {
        "REDIS_URL": redis_url,
        "RATE_LIMITS_ENABLED": "true",
        "RATE_LIMIT_WINDOW_SECONDS": "2",
        "CHAT_RPM": str(RPM),
        "CHAT_TPM": "0",
        "GROQ_FAIR_SHARE": "true" if fair else "false",
        "USER_MESSAGES_PER_WINDOW": str(PER_USER),
        "USER_RATE_WINDOW_SECONDS": "60",
        "MEMORY_MAX_MESSAGES": "100",  # every turn of the over-the-limit test stays visible
    }


@pytest.fixture(scope="module")
def fair_stack(service_env: dict[str, str], workdir: Path, redis_server: RedisServer) -> Iterator[FairStack]:
    redis_url = redis_server.url.rsplit("/", 1)[0] + "/5"
    env = stack_env(service_env, redis_url, fair=True)
    api, api_url = start_api(env, workdir / "fair-api.log")
    worker = start_worker(env, workdir / "fair-worker.log", "--pool", "text", "--concurrency", "4")
    client = redis.Redis.from_url(redis_url)
    hooks = Webhooks(api_url)
    yield FairStack(hooks, worker, client)
    hooks.http.close()
    worker.stop()
    api.stop()
    client.close()


@pytest.fixture
def stack(fair_stack: FairStack, graph_fake: GraphFake, groq_fake: GroqFake) -> FairStack:
    fair_stack.redis.flushdb()
    return fair_stack


def sender_of(call: Any) -> str:
    return str(call.body["messages"][-1]["content"]).split(":", 1)[0].removeprefix("You said: ")


def send(stack: FairStack, user: str, text: str) -> None:
    assert (
        stack.webhooks.post(message_body([text_message(f"{user}: {text}", sender=user)], sender=user)).status_code
        == 200
    )


def calls_before_each_answer(
    stack: FairStack, groq_fake: GroqFake, graph_fake: GraphFake, flood: int
) -> dict[str, int]:
    """Floods FLOODER with `flood` messages, waits until the budget is full, then each other user writes once.
    Returns, per other user, how many chat calls reached Groq after their message up to and including theirs."""
    for i in range(flood):
        send(stack, FLOODER, f"flood {i}")
    wait_for(lambda: len(groq_fake.calls_to("chat/completions")) >= RPM, what="the flood to fill the budget")
    written_at = len(groq_fake.calls_to("chat/completions"))
    for user in OTHERS:
        send(stack, user, "hello, anyone there?")
    wait_for(lambda: all(graph_fake.texts_to(u) for u in OTHERS), timeout=60, what="the other users' answers")
    wait_for(lambda: len(graph_fake.texts_to(FLOODER)) == flood, timeout=60, what="the whole flood answered")
    order = [sender_of(c) for c in groq_fake.calls_to("chat/completions")][written_at:]
    positions = {user: order.index(user) + 1 for user in OTHERS}
    # The flood was still going when the others were served: they did not just wait for its end.
    assert FLOODER in order[max(positions.values()) :], order
    return positions


def test_under_a_flood_every_other_user_gets_a_call_within_the_next_window(
    stack: FairStack, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    positions = calls_before_each_answer(stack, groq_fake, graph_fake, flood=PER_USER)
    assert max(positions.values()) <= WITHIN, positions


def test_a_user_over_the_limit_is_read_and_remembered_not_answered_and_told_once(
    stack: FairStack, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    user = "15550160009"
    for i in range(PER_USER + 4):
        send(stack, user, f"message {i}")
    wait_for(lambda: len(graph_fake.texts_to(user)) >= PER_USER + 1, timeout=60, what="answers and one notice")
    wait_for(
        lambda: stack.redis.llen(f"lp:mem:{conversation_of(user)}") >= 2 * PER_USER + 4,
        timeout=60,
        what="every turn stored",
    )
    time.sleep(0.5)  # nothing more may arrive
    texts = graph_fake.texts_to(user)
    notices = [t for t in texts if t.startswith("You're sending messages faster")]
    assert len(notices) == 1 and "60 s" in notices[0]
    assert len(texts) == PER_USER + 1
    assert len(groq_fake.calls_to("chat/completions")) == PER_USER
    memory = [json.loads(item) for item in stack.redis.lrange(f"lp:mem:{conversation_of(user)}", 0, -1)]
    said = [m["content"] for m in memory if m["role"] == "user"]
    assert said == [f"{user}: message {i}" for i in range(PER_USER + 4)]  # nothing lost, in order
    # Every message got its blue ticks; only the answered ones and the notice showed "typing".
    receipts = graph_fake.read_receipts()
    assert len({r["message_id"] for r in receipts}) >= PER_USER + 4
