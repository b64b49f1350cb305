"""Every way out of a job releases its conversation: after each exit the user's next message is answered within
seconds, on real Celery workers (issue #11, kind 1).

The conversation lease is long here (LONG_LEASE) wherever the exit must release the conversation itself: a test
that passed only because the lease ran out would take minutes and fail its time bound. Only the last test, a whole
worker SIGKILLed, relies on the lease (a short one), because nothing is left to report the death.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis

from tests.fakes.graph_fake import GraphFake
from tests.fakes.groq_fake import GroqFake, groq_error
from tests.fakes.server import Fault, wait_for
from tests.processes import REPO, RedisServer, ServiceProcess, fake_backed_env, start_worker
from tests.queued_jobs import ingest, text_job
from tests.webhooks import encode, message_body, signed_headers, text_message

pytestmark = pytest.mark.integration

LONG_LEASE = 120  # seconds: far beyond every time bound below
SHORT_LEASE = 4
NEXT_ANSWER_WITHIN = 15.0  # seconds, generous for a loaded CI host; the lease would take LONG_LEASE
APOLOGY_EN = "Sorry, something went wrong on my side and I couldn't answer that. Please try again in a moment."
CASES = REPO / "tests" / "fixtures" / "cases" / "hardening"


@pytest.fixture(scope="module")
def env(own_redis: RedisServer, graph_fake: GraphFake, groq_fake: GroqFake) -> dict[str, str]:
    return fake_backed_env(own_redis.url, graph_fake.url, graph_fake.version, groq_fake.url) | {
        "CONVERSATION_LEASE_SECONDS": str(LONG_LEASE),
        "TASK_SOFT_TIME_LIMIT": "20",
        "TASK_TIME_LIMIT": "25",
        "CELERY_VISIBILITY_TIMEOUT": "60",
        "CHAT_RPM": "1000",
        "CHAT_TPM": "1000000",
    }


WorkerFactory = Callable[..., ServiceProcess]


@pytest.fixture
def workers(env: dict[str, str], tmp_path: Path) -> Iterator[WorkerFactory]:
    started: list[ServiceProcess] = []

    def start(**overrides: str) -> ServiceProcess:
        name = f"w{len(started)}"
        log = tmp_path / f"{name}.log"
        process = start_worker(env | overrides, log, "--pool", "all", "--concurrency", "1", "--name", f"{name}@%h")
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def post(api: str, user: str, text: str) -> None:
    raw = encode(message_body([text_message(text, sender=user)], sender=user))
    assert httpx.post(f"{api}/webhook", content=raw, headers=signed_headers(raw), timeout=10).status_code == 200


def dead_letters(client: redis.Redis) -> list[dict[str, Any]]:
    return [orjson.loads(raw) for raw in client.lrange("lp:dlq", 0, -1)]


def drained(client: redis.Redis) -> bool:
    return not client.keys("lp:inbox:*") and client.zcard("lp:leases") == 0


def assert_next_message_answered(api: str, rds: redis.Redis, graph_fake: GraphFake, user: str) -> float:
    """The exit released the conversation: a new message from the same user is answered within seconds."""
    before = len(graph_fake.texts_to(user))
    started = time.monotonic()
    post(api, user, "Are you still there?")
    wait_for(
        lambda: graph_fake.texts_to(user)[before:] == ["You said: Are you still there?"],
        timeout=NEXT_ANSWER_WITHIN,
        what="the next message's answer",
    )
    wait_for(lambda: drained(rds), timeout=10, what="the mailbox to drain")
    return time.monotonic() - started


def test_retries_and_deferrals_beyond_celerys_default_cap_end_in_an_apology_and_release(
    api: str, rds: redis.Redis, workers: WorkerFactory, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    """The retry-cap bug: Celery's task default (max_retries=3) counted deferrals too, and the fourth retry raised
    MaxRetriesExceededError: no apology, no dead letter, the conversation held for a whole lease. Here 4 rate-limit
    deferrals, then Groq answers 503 to every chat call: 6 retries in all, past Celery's 3."""
    workers(TASK_MAX_RETRIES="2", TASK_DEADLINE_SECONDS="40")
    rate_limited = groq_error(429, "rate_limit_exceeded", "Rate limit reached", "requests", **{"retry-after": "0.3"})
    groq_fake.faults.add("chat", rate_limited, times=4)
    groq_fake.faults.add("chat", groq_error(503, "service_unavailable", "down", "internal_server_error"), times=500)
    user = "15550200001"
    post(api, user, "Anyone there?")

    wait_for(lambda: graph_fake.texts_to(user), timeout=40, what="the apology")
    assert graph_fake.texts_to(user) == [APOLOGY_EN]
    assert [r["reason"] for r in dead_letters(rds)] == ["groq_http_503"]
    assert len(groq_fake.calls_to("chat/completions")) == 4 + 3  # 4 deferred, first try + TASK_MAX_RETRIES

    groq_fake.faults.clear()
    assert_next_message_answered(api, rds, graph_fake, user)


def test_groq_503_on_every_call_ends_after_task_max_retries_not_celerys_three(
    api: str, rds: redis.Redis, workers: WorkerFactory, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    """The issue's reproduction: Groq answers 503 to every chat call. TASK_MAX_RETRIES=4 is above Celery's default
    cap of 3, which used to end the job at the fourth retry with no apology and no dead letter."""
    workers(TASK_MAX_RETRIES="4", TASK_DEADLINE_SECONDS="90")
    groq_fake.faults.add("chat", groq_error(503, "service_unavailable", "down", "internal_server_error"), times=500)
    user = "15550200008"
    post(api, user, "Is anybody out there today?")

    wait_for(lambda: graph_fake.texts_to(user), timeout=60, what="the apology")  # backoffs: at most 2+4+8+16 s
    assert graph_fake.texts_to(user) == [APOLOGY_EN]
    assert [r["reason"] for r in dead_letters(rds)] == ["groq_http_503"]
    assert len(groq_fake.calls_to("chat/completions")) == 1 + 4

    groq_fake.faults.clear()
    assert_next_message_answered(api, rds, graph_fake, user)


def test_a_wait_past_the_deadline_ends_the_job_at_once(
    api: str, rds: redis.Redis, workers: WorkerFactory, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    """Groq's 429 asks for a wait that ends after the job's deadline: the job is given up now, not deferred."""
    workers(TASK_DEADLINE_SECONDS="10")
    groq_fake.faults.add(
        "chat", groq_error(429, "rate_limit_exceeded", "Rate limit reached", "requests", **{"retry-after": "60"})
    )
    user = "15550200009"
    post(api, user, "Is anybody out there today?")
    wait_for(lambda: graph_fake.texts_to(user), timeout=20, what="the apology")
    assert graph_fake.texts_to(user) == [APOLOGY_EN]
    assert [r["reason"] for r in dead_letters(rds)] == ["groq_rate_limited"]
    assert len(groq_fake.calls_to("chat/completions")) == 1
    # Groq's cooldown holds every job of the model for its 60 s, the next message's too: that wait is Groq's
    # instruction, not this exit's doing, so it is lifted here.
    cooldowns = rds.keys("lp:rl:*:cooldown")
    assert cooldowns
    rds.delete(*cooldowns)
    assert_next_message_answered(api, rds, graph_fake, user)


def worker_rejected_job(user: str) -> dict[str, Any]:
    """The handed case's message, as an API of another version would queue it: a contact name that is a number,
    which this worker's schema rejects (a rolling deploy's schema mismatch)."""
    case = json.loads((CASES / "worker-rejects-payload.json").read_text())
    value = case["entry"][0]["changes"][0]["value"]
    job = text_job(user, value["messages"][0]["text"]["body"])
    return job | {"contact_name": value["contacts"][0]["profile"]["name"]}


def test_a_payload_the_worker_rejects_is_dead_lettered_once_and_releases_the_conversation(
    api: str, rds: redis.Redis, workers: WorkerFactory, graph_fake: GraphFake
) -> None:
    worker = workers(CONVERSATION_LEASE_SECONDS=str(SHORT_LEASE))  # a short lease: a re-hand would show quickly
    user = "15550200002"
    job = worker_rejected_job(user)
    assert job["contact_name"] == 12345
    ingest(rds, job, LONG_LEASE)
    wait_for(lambda: dead_letters(rds), timeout=15, what="the dead letter")

    assert_next_message_answered(api, rds, graph_fake, user)
    time.sleep(2 * SHORT_LEASE)  # before, the reaper handed the rejected job out again every lease
    assert [r["reason"] for r in dead_letters(rds)] == ["invalid_payload"]
    assert drained(rds)
    assert worker.process is not None and worker.process.poll() is None


def test_a_crash_in_the_pipeline_apologises_records_and_releases(
    api: str, rds: redis.Redis, workers: WorkerFactory, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    workers()
    # A reply whose content is a number: our code trips over it (a bug path, not a classified provider error).
    groq_fake.faults.add("chat", Fault(200, {"choices": [{"index": 0, "message": {"content": 5}}]}, {}))
    user = "15550200003"
    post(api, user, "Break something")
    wait_for(lambda: graph_fake.texts_to(user), timeout=20, what="the apology")
    assert graph_fake.texts_to(user) == [APOLOGY_EN]
    assert [r["reason"] for r in dead_letters(rds)] == ["unexpected_error"]
    assert_next_message_answered(api, rds, graph_fake, user)


def test_the_soft_time_limit_apologises_records_and_releases(
    api: str, rds: redis.Redis, workers: WorkerFactory, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    """The groq SDK wraps the soft limit's exception in APIConnectionError; it must still end the job."""
    workers(TASK_SOFT_TIME_LIMIT="2")
    groq_fake.hold_chat.set()
    user = "15550200004"
    post(api, user, "Take your time")
    wait_for(lambda: graph_fake.texts_to(user), timeout=20, what="the apology")
    groq_fake.hold_chat.clear()
    groq_fake.release_chat.set()
    assert graph_fake.texts_to(user) == [APOLOGY_EN]
    assert [r["reason"] for r in dead_letters(rds)] == ["soft_time_limit"]
    assert len(groq_fake.calls_to("chat/completions")) == 1  # not retried
    assert_next_message_answered(api, rds, graph_fake, user)


def test_the_hard_time_limit_is_reported_by_the_parent_which_hands_the_job_on(
    api: str, rds: redis.Redis, workers: WorkerFactory, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    """A pool process that cannot even take its soft limit (stopped here with SIGSTOP; in life, stuck in C code)
    is killed by the parent at TASK_TIME_LIMIT, and Celery acknowledges the message. The parent reports it: the
    job is handed on and ends with an apology, without waiting for the lease."""
    worker = workers(TASK_SOFT_TIME_LIMIT="10", TASK_TIME_LIMIT="12")
    groq_fake.hold_chat.set()
    user = "15550200005"
    post(api, user, "Stuck forever")
    # Stopped before its soft limit (10 s after the job started), so only the hard limit can end it.
    wait_for(lambda: groq_fake.calls_to("chat/completions"), timeout=8, what="the worker to reach Groq")
    assert worker.process is not None
    for child in children(worker.process.pid):
        os.kill(child, signal.SIGSTOP)
    wait_for(lambda: graph_fake.texts_to(user), timeout=30, what="the apology")
    groq_fake.hold_chat.clear()
    groq_fake.release_chat.set()
    assert graph_fake.texts_to(user) == [APOLOGY_EN]
    assert [r["reason"] for r in dead_letters(rds)] == ["time_limit"]
    assert "Hard time limit" in worker.output()
    assert_next_message_answered(api, rds, graph_fake, user)


def children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout
    return [int(line) for line in found.split()]


def test_a_killed_pool_process_is_reported_by_the_parent_and_the_job_runs_again_at_once(
    api: str, rds: redis.Redis, workers: WorkerFactory, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    """SIGKILL (what the OOM killer sends) to the pool process: Celery's parent sees WorkerLostError and requeues
    the message; the parent also drops the dead copy's claim, so the requeued copy runs now, not after the lease."""
    worker = workers()
    groq_fake.hold_chat.set()
    user = "15550200006"
    post(api, user, "Out of memory")
    wait_for(lambda: groq_fake.calls_to("chat/completions"), timeout=20, what="the worker to reach Groq")
    killed_at = time.monotonic()
    assert worker.process is not None
    for child in children(worker.process.pid):
        os.kill(child, signal.SIGKILL)
    groq_fake.hold_chat.clear()
    groq_fake.release_chat.set()

    wait_for(lambda: graph_fake.texts_to(user), timeout=NEXT_ANSWER_WITHIN + 15, what="the reply after the kill")
    assert time.monotonic() - killed_at < LONG_LEASE / 2
    assert graph_fake.texts_to(user) == ["You said: Out of memory"]
    assert dead_letters(rds) == []
    assert_next_message_answered(api, rds, graph_fake, user)


def test_a_sigkilled_worker_releases_the_conversation_within_the_lease(
    api: str, rds: redis.Redis, workers: WorkerFactory, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    """Main process and pool together: nobody is left to report it, so the conversation lease is what ends the
    claim; the reaper of another worker hands the job out again within the lease plus one reaper round."""
    first = workers(CONVERSATION_LEASE_SECONDS=str(SHORT_LEASE))
    groq_fake.hold_chat.set()
    user = "15550200007"
    post(api, user, "Survive a crash")
    wait_for(lambda: groq_fake.calls_to("chat/completions"), timeout=20, what="the worker to reach Groq")
    first.signal_group(signal.SIGKILL)
    assert first.process is not None
    first.process.wait(timeout=10)
    killed_at = time.monotonic()
    groq_fake.hold_chat.clear()
    groq_fake.release_chat.set()
    workers(CONVERSATION_LEASE_SECONDS=str(SHORT_LEASE))

    wait_for(lambda: graph_fake.texts_to(user), timeout=30, what="the reply after the crash")
    assert time.monotonic() - killed_at < SHORT_LEASE + 15  # the lease, a reaper round, a worker's start-up
    assert graph_fake.texts_to(user) == ["You said: Survive a crash"]
    assert_next_message_answered(api, rds, graph_fake, user)
