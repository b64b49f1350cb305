"""Delivery guarantees end to end: duplicates, crashes, ordering, rate limits, provider faults, Redis outages.

A private, durable (AOF) redis-server and API for this module, real Celery worker processes started per test
with short leases and windows, and the loopback Groq/Graph fakes with fault injection.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis

from tests.fakes.graph_fake import GraphFake, graph_error
from tests.fakes.groq_fake import GroqFake, groq_error
from tests.fakes.server import wait_for
from tests.processes import REPO, RedisServer, ServiceProcess, fake_backed_env, start_worker
from tests.webhooks import conversation_of, encode, message_body, signed_headers, text_message

pytestmark = pytest.mark.integration

LEASE_SECONDS = 4
APOLOGY_EN = "Sorry, something went wrong on my side and I couldn't answer that. Please try again in a moment."


@pytest.fixture(scope="module")
def durable_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("guarantees-redis"), durable=True)
    if not server.controllable:
        pytest.skip("needs a redis-server binary to stop and restart")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def env(durable_redis: RedisServer, graph_fake: GraphFake, groq_fake: GroqFake) -> dict[str, str]:
    return fake_backed_env(durable_redis.url, graph_fake.url, graph_fake.version, groq_fake.url) | {
        # Short but safe: heartbeats every ~1.3 s keep a live job's lease; a dead worker's job is back in ~5 s.
        "CONVERSATION_LEASE_SECONDS": str(LEASE_SECONDS),
        "TASK_SOFT_TIME_LIMIT": "20",
        "TASK_TIME_LIMIT": "25",
        "CELERY_VISIBILITY_TIMEOUT": "30",
        # Generous budgets unless a test is about the limiter.
        "CHAT_RPM": "1000",
        "CHAT_TPM": "1000000",
    }


@pytest.fixture
def rds(durable_redis: RedisServer, graph_fake: GraphFake, groq_fake: GroqFake) -> Iterator[redis.Redis]:
    if durable_redis.process is None:
        durable_redis.start()  # a failed outage test left it stopped
    client = redis.Redis.from_url(durable_redis.url)
    client.flushdb()
    graph_fake.reset()
    groq_fake.reset()
    yield client
    groq_fake.release_chat.set()  # never leave a held request behind
    client.close()


WorkerFactory = Callable[..., ServiceProcess]


@pytest.fixture
def workers(env: dict[str, str], tmp_path: Path) -> Iterator[WorkerFactory]:
    started: list[ServiceProcess] = []

    def start(concurrency: int = 2, **overrides: str) -> ServiceProcess:
        name = f"w{len(started)}"
        process = start_worker(
            env | overrides,
            tmp_path / f"{name}.log",
            "--pool",
            "all",
            "--concurrency",
            str(concurrency),
            "--name",
            f"{name}@%h",
        )
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def post(api: str, body: dict[str, Any]) -> int:
    raw = encode(body)
    return httpx.post(f"{api}/webhook", content=raw, headers=signed_headers(raw), timeout=10).status_code


def drained(client: redis.Redis) -> bool:
    """Every accepted message finished: no mailbox holds a job, no conversation is leased."""
    return not client.keys("lp:inbox:*") and client.zcard("lp:leases") == 0


def dead_letters(client: redis.Redis) -> list[dict[str, Any]]:
    return [orjson.loads(raw) for raw in client.lrange("lp:dlq", 0, -1)]


def loopera_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The real operator CLI, as a separate process."""
    command = [sys.executable, "-m", "loopera.cli", *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False)


def log_events(process: ServiceProcess, event: str) -> list[dict[str, Any]]:
    """Structured events of one name from a worker's log (Celery prefixes pool output with its own header)."""
    events = []
    for line in process.output().splitlines():
        start = line.find('{"')
        if f'"{event}"' in line and start >= 0:
            record = orjson.loads(line[start:])
            if record.get("event") == event:
                events.append(record)
    return events


# --- exactly one reply -------------------------------------------------------------------------------------


def test_same_webhook_posted_five_times_concurrently_and_again_sequentially_gives_one_reply(
    api: str, rds: redis.Redis, workers: WorkerFactory, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    workers()
    user = "15550100001"
    body = message_body([text_message("Only once, please", sender=user)], sender=user)
    statuses: list[int] = []
    threads = [threading.Thread(target=lambda: statuses.append(post(api, body))) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses += [post(api, body) for _ in range(5)]
    assert statuses == [200] * 10

    wait_for(lambda: graph_fake.texts_to(user), what="the reply")
    wait_for(lambda: drained(rds), what="the mailbox to drain")
    statuses.append(post(api, body))  # Meta's late redelivery, after the job finished
    wait_for(lambda: drained(rds), what="the mailbox to drain again")
    assert graph_fake.texts_to(user) == ["You said: Only once, please"]
    assert len(groq_fake.calls_to("chat/completions")) == 1


def test_sigkilled_worker_mid_request_still_gives_exactly_one_reply(
    api: str, rds: redis.Redis, workers: WorkerFactory, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    first = workers()
    groq_fake.hold_chat.set()
    user = "15550100002"
    assert post(api, message_body([text_message("Survive a crash", sender=user)], sender=user)) == 200
    wait_for(lambda: groq_fake.calls_to("chat/completions"), what="the worker to reach Groq")

    first.signal_group(signal.SIGKILL)  # the whole worker: main process and pool children
    assert first.process is not None
    first.process.wait(timeout=10)
    groq_fake.hold_chat.clear()
    groq_fake.release_chat.set()
    workers()

    # The dead job's lease runs out; the new worker's reaper hands the job out again.
    wait_for(lambda: graph_fake.texts_to(user), timeout=30, what="the reply after the crash")
    wait_for(lambda: drained(rds), what="the mailbox to drain")
    assert graph_fake.texts_to(user) == ["You said: Survive a crash"]
    assert len(groq_fake.calls_to("chat/completions")) == 2  # the killed attempt and the one that answered


def children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout
    return [int(line) for line in found.split()]


def test_oom_killed_pool_process_still_gives_exactly_one_reply(
    api: str, rds: redis.Redis, workers: WorkerFactory, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    """The kernel's OOM killer takes a pool process, not the worker: Celery requeues the job at once
    (reject_on_worker_lost), and the mailbox claim keeps the dead copy's job from running twice."""
    worker = workers()
    groq_fake.hold_chat.set()
    user = "15550100005"
    assert post(api, message_body([text_message("Out of memory", sender=user)], sender=user)) == 200
    wait_for(lambda: groq_fake.calls_to("chat/completions"), what="the worker to reach Groq")

    assert worker.process is not None
    for child in children(worker.process.pid):
        os.kill(child, signal.SIGKILL)
    groq_fake.hold_chat.clear()
    groq_fake.release_chat.set()

    wait_for(lambda: graph_fake.texts_to(user), timeout=30, what="the reply after the pool process died")
    wait_for(lambda: drained(rds), what="the mailbox to drain")
    assert graph_fake.texts_to(user) == ["You said: Out of memory"]
    assert worker.process.poll() is None  # the worker itself lived on and replaced its pool process


def test_warm_shutdown_finishes_the_running_job(
    api: str, rds: redis.Redis, workers: WorkerFactory, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    worker = workers()
    groq_fake.hold_chat.set()
    user = "15550100003"
    assert post(api, message_body([text_message("Finish me", sender=user)], sender=user)) == 200
    wait_for(lambda: groq_fake.calls_to("chat/completions"), what="the worker to reach Groq")

    assert worker.process is not None
    worker.process.send_signal(signal.SIGTERM)  # what `docker stop` / Kubernetes send to the main process
    wait_for(lambda: "Warm shutdown" in worker.output(), what="Celery to start its warm shutdown")
    groq_fake.release_chat.set()

    assert worker.process.wait(timeout=30) == 0
    assert graph_fake.texts_to(user) == ["You said: Finish me"]
    assert drained(rds)
    assert len(groq_fake.calls_to("chat/completions")) == 1


def test_sigterm_to_the_whole_process_group_loses_nothing(
    api: str, rds: redis.Redis, workers: WorkerFactory, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    """An init that forwards SIGTERM to the group kills the pool children mid-job (no warm shutdown for them);
    the job must still come back and be answered once."""
    worker = workers()
    groq_fake.hold_chat.set()
    user = "15550100004"
    assert post(api, message_body([text_message("Killed by my init", sender=user)], sender=user)) == 200
    wait_for(lambda: groq_fake.calls_to("chat/completions"), what="the worker to reach Groq")

    worker.signal_group(signal.SIGTERM)
    assert worker.process is not None
    worker.process.wait(timeout=30)
    groq_fake.hold_chat.clear()
    groq_fake.release_chat.set()
    workers()

    wait_for(lambda: graph_fake.texts_to(user), timeout=30, what="the reply after the restart")
    wait_for(lambda: drained(rds), what="the mailbox to drain")
    assert graph_fake.texts_to(user) == ["You said: Killed by my init"]


# --- ordering --------------------------------------------------------------------------------------------------


def test_ten_quick_messages_get_ten_replies_in_order_while_other_users_are_served(
    api: str, rds: redis.Redis, workers: WorkerFactory, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    workers()
    workers()
    groq_fake.chat_delay = 0.05  # gives overlapping pipelines of one user a chance to show
    user, others = "15550100010", ["15550100011", "15550100012", "15550100013"]
    texts = [f"message {i}" for i in range(10)]
    for i, text in enumerate(texts):
        assert post(api, message_body([text_message(text, sender=user)], sender=user)) == 200
        if i in (2, 4, 6):
            other = others[(i - 2) // 2]
            assert post(api, message_body([text_message(f"hi from {other}", sender=other)], sender=other)) == 200

    wait_for(lambda: len(graph_fake.texts_to(user)) == 10, timeout=40, what="ten replies")
    for other in others:
        wait_for(lambda other=other: graph_fake.texts_to(other), what=f"the reply to {other}")
    wait_for(lambda: drained(rds), what="the mailboxes to drain")

    assert graph_fake.texts_to(user) == [f"You said: {text}" for text in texts]
    for other in others:
        assert graph_fake.texts_to(other) == [f"You said: hi from {other}"]
    memory = [orjson.loads(raw) for raw in rds.lrange(f"lp:mem:{conversation_of(user)}", 0, -1)]
    expected = [turn for text in texts for turn in (("user", text), ("assistant", f"You said: {text}"))]
    assert [(m["role"], m["content"]) for m in memory] == expected
    # The user's pipelines never overlapped: each model call started after the previous one was answered.
    burst = [c for c in groq_fake.calls_to("chat/completions") if c.body["messages"][-1]["content"] in texts]
    assert [c.body["messages"][-1]["content"] for c in burst] == texts
    assert all(b.at >= a.extra["answered_at"] for a, b in itertools.pairwise(burst))
    # Other users did not wait for the whole burst: each answer left before the burst's last one.
    order = [m.get("to") for m in graph_fake.sent_messages()]
    last_of_burst = len(order) - 1 - order[::-1].index(user)
    assert all(order.index(other) < last_of_burst for other in others)


# --- rate limits -----------------------------------------------------------------------------------------------


class AdmissionLog:
    """Every admission the shared limiter records, read from Redis with the limiter's own timestamps.

    The limiter keeps each admitted call in a sorted set scored by Redis' clock (microseconds) for a whole window,
    so polling the set well inside a window sees every admission exactly once, at the time the limiter decided,
    with no lag from process scheduling (the Groq fake stamps arrival, which trails the decision on a loaded host).
    """

    def __init__(self, client: redis.Redis, pattern: str, every: float = 0.05) -> None:
        self._redis, self._pattern, self._every = client, pattern, every
        self.admitted: dict[bytes, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> AdmissionLog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._read()

    def _read(self) -> None:
        for key in self._redis.scan_iter(match=self._pattern):
            for member, score in self._redis.zrange(key, 0, -1, withscores=True):
                self.admitted[member] = score / 1_000_000

    def _poll(self) -> None:
        while not self._stop.wait(self._every):
            self._read()


def test_shared_limit_holds_across_worker_processes_and_the_backlog_completes(
    api: str, rds: redis.Redis, workers: WorkerFactory, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    limit, window = 3, 3.0
    budget = {"CHAT_RPM": str(limit), "RATE_LIMIT_WINDOW_SECONDS": str(window)}
    users = [f"1555010002{i}" for i in range(9)]
    with AdmissionLog(rds, "lp:rl:*:requests") as log:
        pool = [workers(**budget), workers(**budget)]
        for user in users:
            assert post(api, message_body([text_message(f"limited {user}", sender=user)], sender=user)) == 200
        for user in users:
            wait_for(lambda user=user: graph_fake.texts_to(user), timeout=40, what=f"the reply to {user}")
        wait_for(lambda: drained(rds), what="the mailboxes to drain")
    for user in users:
        assert graph_fake.texts_to(user) == [f"You said: limited {user}"]

    # One admission per Groq call: deferred jobs did not call Groq before their turn, nor without the limiter.
    assert len(groq_fake.calls_to("chat/completions")) == len(users)
    admitted = sorted(log.admitted.values())
    assert len(admitted) == len(users), admitted
    # Never more than `limit` admissions in any window, by the limiter's own clock. Without the limiter all calls
    # land within about a second; a token bucket / GCRA with a burst of `limit` would let a 4th call in after
    # window/limit = 1 s. Both fail this check.
    relative = [round(at - admitted[0], 3) for at in admitted]
    for start in admitted:
        assert sum(1 for at in admitted if start <= at < start + window) <= limit, relative
    # The backlog waited by deferral (countdown), not by calling Groq and failing.
    assert sum(len(log_events(process, "job.deferred")) for process in pool) >= len(users) - limit


def test_groq_429_retry_after_is_honoured_and_the_reply_is_sent_once(
    api: str, rds: redis.Redis, workers: WorkerFactory, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    workers()
    groq_fake.faults.add(
        "chat",
        groq_error(429, "rate_limit_exceeded", "Rate limit reached", "requests", **{"retry-after": "2"}),
    )
    user = "15550100030"
    assert post(api, message_body([text_message("Patience", sender=user)], sender=user)) == 200
    wait_for(lambda: graph_fake.texts_to(user), timeout=30, what="the reply after the 429")
    wait_for(lambda: drained(rds), what="the mailbox to drain")

    calls = groq_fake.calls_to("chat/completions")
    assert len(calls) == 2
    assert calls[1].at - calls[0].at >= 2.0
    assert graph_fake.texts_to(user) == ["You said: Patience"]


# --- Graph faults --------------------------------------------------------------------------------------------


def test_graph_500_then_200_delivers_once(
    api: str, rds: redis.Redis, workers: WorkerFactory, graph_fake: GraphFake
) -> None:
    workers()
    graph_fake.faults.add("send", graph_error(131000, "Something went wrong", status=500))
    user = "15550100040"
    assert post(api, message_body([text_message("Through a hiccup", sender=user)], sender=user)) == 200
    wait_for(lambda: graph_fake.texts_to(user), timeout=30, what="the reply after the 500")
    wait_for(lambda: drained(rds), what="the mailbox to drain")
    assert len(graph_fake.failed_sends()) == 1
    assert graph_fake.texts_to(user) == ["You said: Through a hiccup"]
    assert dead_letters(rds) == []


def test_graph_190_is_not_retried_alerts_ops_once_and_dead_letters_the_job(
    api: str, rds: redis.Redis, workers: WorkerFactory, graph_fake: GraphFake
) -> None:
    worker = workers()
    graph_fake.faults.add("send", graph_error(190, "Error validating access token", status=401), times=5)
    user = "15550100050"
    assert post(api, message_body([text_message("Token expired", sender=user)], sender=user)) == 200
    records = wait_for(lambda: dead_letters(rds), what="a dead-letter record")
    wait_for(lambda: drained(rds), what="the mailbox to drain")

    assert [r["reason"] for r in records] == ["graph_190"]
    assert records[0]["payload"]["conversation"] == conversation_of(user)
    assert len(graph_fake.failed_sends()) == 1  # no retry, and no apology through the broken channel
    assert graph_fake.texts_to(user) == []
    alerts = wait_for(lambda: log_events(worker, "ops.alert"), what="the ops alert in the worker log")
    assert [a["reason"] for a in alerts] == ["graph_190"]


# --- permanent Groq failure and replay ----------------------------------------------------------------------


def test_permanent_groq_failure_apologises_dead_letters_and_replay_completes(
    api: str, rds: redis.Redis, workers: WorkerFactory, graph_fake: GraphFake, groq_fake: GroqFake, env: dict[str, str]
) -> None:
    workers()
    groq_fake.faults.add("chat", groq_error(400, "model_decommissioned", "The model has been decommissioned"))
    user = "15550100060"
    assert post(api, message_body([text_message("Hello there", sender=user)], sender=user)) == 200
    wait_for(lambda: graph_fake.texts_to(user), what="the apology")
    records = wait_for(lambda: dead_letters(rds), what="a dead-letter record")
    wait_for(lambda: drained(rds), what="the mailbox to drain")
    assert graph_fake.texts_to(user) == [APOLOGY_EN]
    assert [r["reason"] for r in records] == ["groq_model_decommissioned"]

    listed = loopera_cli(env, "dlq", "list")
    assert listed.returncode == 0, listed.stderr
    assert "groq_model_decommissioned" in listed.stdout
    replay = loopera_cli(env, "dlq", "replay", "0")
    assert replay.returncode == 0, replay.stderr
    assert "replayed groq_model_decommissioned" in replay.stdout

    wait_for(lambda: len(graph_fake.texts_to(user)) == 2, what="the real answer after the replay")
    wait_for(lambda: drained(rds), what="the mailbox to drain")
    assert graph_fake.texts_to(user) == [APOLOGY_EN, "You said: Hello there"]
    assert dead_letters(rds) == []


def test_groq_down_retries_within_the_deadline_then_apologises_once(
    api: str, rds: redis.Redis, workers: WorkerFactory, graph_fake: GraphFake, groq_fake: GroqFake
) -> None:
    workers(TASK_DEADLINE_SECONDS="6")
    groq_fake.faults.add("chat", groq_error(503, "service_unavailable", "down", "internal_server_error"), times=50)
    user = "15550100065"
    assert post(api, message_body([text_message("Anyone there?", sender=user)], sender=user)) == 200
    records = wait_for(lambda: dead_letters(rds), timeout=30, what="a dead-letter record")
    wait_for(lambda: drained(rds), what="the mailbox to drain")

    assert [r["reason"] for r in records] == ["groq_http_503"]
    assert len(groq_fake.calls_to("chat/completions")) >= 2  # it did wait and retry before giving up
    assert graph_fake.texts_to(user) == [APOLOGY_EN]


# --- Redis outage ------------------------------------------------------------------------------------------------


def test_redis_outage_answers_503_loses_nothing_and_everything_completes_after_restart(
    api: str,
    rds: redis.Redis,
    durable_redis: RedisServer,
    workers: WorkerFactory,
    graph_fake: GraphFake,
    groq_fake: GroqFake,
) -> None:
    worker = workers()
    before = "15550100070"
    groq_fake.hold_chat.set()
    assert post(api, message_body([text_message("Accepted before", sender=before)], sender=before)) == 200
    wait_for(lambda: groq_fake.calls_to("chat/completions"), what="the job to be in flight")

    durable_redis.stop()
    during = [f"1555010007{i}" for i in range(1, 4)]
    bodies = {user: message_body([text_message(f"Sent during {user}", sender=user)], sender=user) for user in during}
    for body in bodies.values():
        assert post(api, body) == 503  # not accepted, so Meta keeps it and redelivers
    assert httpx.get(f"{api}/ready", timeout=10).status_code != 200
    groq_fake.hold_chat.clear()
    groq_fake.release_chat.set()  # the in-flight job now fails on Redis, not on Groq
    wait_for(lambda: "Cannot connect" in worker.output(), what="the worker to notice the outage")

    durable_redis.start()  # same port, same AOF: what was accepted is still there
    wait_for(lambda: httpx.get(f"{api}/ready", timeout=10).status_code == 200, what="/ready after the restart")
    for body in bodies.values():
        assert post(api, body) == 200  # Meta's redelivery

    for user in [before, *during]:
        wait_for(lambda user=user: graph_fake.texts_to(user), timeout=40, what=f"the reply to {user}")
    wait_for(lambda: drained(rds), timeout=30, what="the mailboxes to drain")
    assert graph_fake.texts_to(before) == ["You said: Accepted before"]
    for user in during:
        assert graph_fake.texts_to(user) == [f"You said: Sent during {user}"]
