"""Meta's status webhooks on real processes: every reply part carries biz_opaque_callback_data, the API records the
statuses of our parts, a send whose HTTP answer was lost is confirmed by its status instead of sent twice, and an
answer Meta could not deliver reaches the user with their next message.

The Graph fake plays Meta: it accepts a message, posts the signed status webhooks to the API (sent, then delivered
or failed) echoing the send's callback data, and can lose the HTTP answer of an accepted send or drop a send before
it is accepted (both hold the connection past the workers' Graph timeout)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
import redis

from loopera.trace import render
from shared.ledger import hashing_key, ledger_key, message_ref
from tests.fakes.graph_fake import DROP, LOSE, GraphFake
from tests.fakes.groq_fake import GroqFake
from tests.fakes.server import wait_for
from tests.processes import RedisServer, ServiceProcess, fake_backed_env, start_worker
from tests.webhooks import APP_SECRET, conversation_of, encode, message_body, signed_headers, text_message

pytestmark = pytest.mark.integration

KEY = hashing_key("", APP_SECRET)
CONFIRM_WAIT = 8.0


@pytest.fixture(scope="module")
def env(own_redis: RedisServer, graph_fake: GraphFake, groq_fake: GroqFake) -> dict[str, str]:
    return fake_backed_env(own_redis.url, graph_fake.url, graph_fake.version, groq_fake.url) | {
        "RATE_LIMITS_ENABLED": "false",
        "GRAPH_TIMEOUT_SECONDS": "2",
        "SEND_CONFIRM_WAIT_SECONDS": str(CONFIRM_WAIT),
    }


@pytest.fixture(scope="module")
def worker(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    log = tmp_path_factory.mktemp("statuses") / "worker.log"
    process = start_worker(env, log, "--pool", "all", "--concurrency", "2")
    yield process
    process.stop()


@pytest.fixture
def rds(own_redis: RedisServer, graph_fake: GraphFake, groq_fake: GroqFake, api: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(own_redis.url)
    client.flushdb()
    graph_fake.reset()
    groq_fake.reset()
    graph_fake.status_sink = f"{api}/webhook"
    graph_fake.hold_seconds = 4.0  # past GRAPH_TIMEOUT_SECONDS
    yield client
    graph_fake.status_sink = None
    client.close()


def post(api: str, user: str, text: str) -> str:
    message = text_message(text, sender=user)
    raw = encode(message_body([message], sender=user))
    assert httpx.post(f"{api}/webhook", content=raw, headers=signed_headers(raw), timeout=10).status_code == 200
    return str(message["id"])


def ledger(client: redis.Redis, message_id: str) -> dict[str, str]:
    raw = client.hgetall(ledger_key(message_ref(message_id, KEY)))
    return {k.decode(): v.decode() for k, v in raw.items()}


def idle(client: redis.Redis, user: str) -> bool:
    inbox = f"lp:inbox:{conversation_of(user)}"
    return not client.exists(inbox) and client.zscore("lp:leases", inbox) is None


def metric(api: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in httpx.get(f"{api}/metrics", timeout=10).text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} ") or (not labels and line.startswith(f"{name} ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_every_reply_part_carries_callback_data_and_the_trace_shows_its_statuses(
    api: str, worker: ServiceProcess, rds: redis.Redis, graph_fake: GraphFake
) -> None:
    user = "15550180001"
    delivered_before = metric(api, "loopera_reply_delivered_seconds_count")
    message_id = post(api, user, "hello there")
    wait_for(lambda: "status:text:0:delivered" in ledger(rds, message_id), what="the delivered status recorded")
    (sent,) = [m for m in graph_fake.sent_messages() if m.get("to") == user]
    ref = message_ref(message_id, KEY)
    assert sent["biz_opaque_callback_data"] == f"lp1:{ref}:text:0"
    assert message_id not in sent["biz_opaque_callback_data"] and user not in sent["biz_opaque_callback_data"]
    assert all("biz_opaque_callback_data" not in r for r in graph_fake.read_receipts())  # not a message

    lines = "\n".join(render(ref, ledger(rds, message_id), KEY))
    assert "status       text:0: sent " in lines and ", delivered " in lines
    assert metric(api, "loopera_reply_delivered_seconds_count") == delivered_before + 1
    assert metric(api, "loopera_statuses_total", status="delivered", code="") >= 1


def test_a_send_whose_answer_was_lost_is_confirmed_by_its_status_and_not_sent_again(
    api: str, worker: ServiceProcess, rds: redis.Redis, graph_fake: GraphFake
) -> None:
    user = "15550180002"
    graph_fake.answers.append(LOSE)  # Meta takes the reply, posts its statuses; the HTTP answer never comes
    # The statuses come after the worker's Graph timeout (2 s) and its first retry's backoff (1-2 s): only the
    # wait for a status keeps it from sending the reply again.
    graph_fake.status_delay = 5.0
    message_id = post(api, user, "what time is it")
    wait_for(lambda: "memory" in ledger(rds, message_id) and idle(rds, user), timeout=40, what="the job finished")
    assert graph_fake.texts_to(user) == ["You said: what time is it"]  # once, not twice
    fields = ledger(rds, message_id)
    assert fields["send:text:0"] == "done" and fields["send:text:0:meta"].startswith("wamid.out.")
    assert fields["send:text:0:confirmed_by"] in ("sent", "delivered")
    assert "send:text:0:unconfirmed" in fields  # the worker did lose the answer, and waited instead of resending
    worker.wait_for_output("send_unconfirmed", timeout=5)


def test_a_send_that_never_reached_meta_is_sent_once_after_the_wait(
    api: str, worker: ServiceProcess, rds: redis.Redis, graph_fake: GraphFake
) -> None:
    user = "15550180003"
    graph_fake.answers.append(DROP)  # lost before Meta: no message, no status
    started = time.monotonic()
    message_id = post(api, user, "are you there")
    wait_for(lambda: graph_fake.texts_to(user), timeout=40, what="the reply sent after the wait")
    waited = time.monotonic() - started
    wait_for(lambda: "memory" in ledger(rds, message_id) and idle(rds, user), timeout=20, what="the job finished")
    assert graph_fake.texts_to(user) == ["You said: are you there"]
    dropped = [r.json for r in graph_fake.requests if "dropped" in (r.json or {})]
    assert len(dropped) == 1
    assert waited >= CONFIRM_WAIT  # it waited for a status before sending again
    fields = ledger(rds, message_id)
    assert fields["send:text:0"] == "done" and "send:text:0:confirmed_by" not in fields
    assert "send:text:0:unconfirmed" in fields  # it did wait for a status


def test_a_reply_meta_could_not_deliver_is_kept_and_delivered_before_the_next_answer(
    api: str, worker: ServiceProcess, rds: redis.Redis, graph_fake: GraphFake
) -> None:
    user = "15550180004"
    graph_fake.failed_statuses.append(131047)  # the first reply: accepted, then failed (window closed)
    first = post(api, user, "What is the capital of Peru?")
    kept = f"lp:undelivered:{conversation_of(user)}"
    wait_for(lambda: rds.llen(kept) == 1, what="the undelivered answer kept")
    assert ledger(rds, first)["status:text:0:error"] == "131047"
    assert rds.lrange("lp:dlq", 0, -1) == []  # a window error is kept, not dead-lettered

    post(api, user, "Thanks!")
    wait_for(lambda: len(graph_fake.texts_to(user)) == 3, what="the kept answer, then the new one")
    texts = graph_fake.texts_to(user)
    assert texts[0] == "You said: What is the capital of Peru?"  # the one Meta could not deliver
    assert texts[1] == (
        "Earlier you asked “What is the capital of Peru?”. Here is the answer I could not deliver then:\n\n"
        "You said: What is the capital of Peru?"
    )
    assert texts[2] == "You said: Thanks!"
    wait_for(lambda: idle(rds, user), what="the conversation idle")
    assert not rds.exists(kept) and rds.hget(f"lp:conv:{conversation_of(user)}", "kept_answers") is None

    post(api, user, "One more")  # delivered once: nothing kept comes again
    wait_for(lambda: len(graph_fake.texts_to(user)) == 4, what="the third answer")
    time.sleep(0.5)
    assert graph_fake.texts_to(user)[3:] == ["You said: One more"]


def test_other_permanent_failures_are_dead_lettered_with_their_code_and_counted(
    api: str, env: dict[str, str], worker: ServiceProcess, rds: redis.Redis, graph_fake: GraphFake
) -> None:
    user = "15550180005"
    before = metric(api, "loopera_statuses_total", status="failed", code="131053")
    graph_fake.failed_statuses.append(131053)
    message_id = post(api, user, "send me the file")
    wait_for(lambda: rds.llen("lp:dlq") == 1, what="the dead letter")
    command = [sys.executable, "-m", "loopera.cli", "dlq", "list"]
    listed = subprocess.run(command, env=os.environ | env, capture_output=True, text=True, timeout=60, check=True)
    assert "graph_131053" in listed.stdout and "whatsapp.delivery_status" in listed.stdout
    replay = subprocess.run(
        [sys.executable, "-m", "loopera.cli", "dlq", "replay", "0"],
        env=os.environ | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert replay.returncode == 1 and "nothing to replay" in replay.stdout
    assert metric(api, "loopera_statuses_total", status="failed", code="131053") == before + 1
    assert not rds.exists(f"lp:undelivered:{conversation_of(user)}")
    # A redelivered status (Meta retries until it gets a 200) is not a second dead letter.
    wait_for(lambda: len(graph_fake.posted_statuses) >= 2, what="both statuses posted")
    assert ledger(rds, message_id)["status:text:0:dead_letter"]
    assert rds.llen("lp:dlq") == 1
