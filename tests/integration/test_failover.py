"""Redis Sentinel failover under load: a primary, one replica and three Sentinels (real `redis-server` processes),
the real API and a real Celery worker configured with REDIS_SENTINELS. The primary is SIGKILLed in the middle of a
burst of webhooks from many users; Sentinel promotes the replica; nothing is restarted.

With WAIT (REDIS_ACK_REPLICAS=1, the default with Sentinel) a 200 means the job is on the replica too, so every
acknowledged message must be answered exactly once and in each user's order. `python -m bench.failover` runs the
same scenario with and without WAIT, several times, and counts what was lost (docs/deployment.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.failover import judge, run_burst, users, wait_for_answers
from tests.fakes.graph_fake import GraphFake
from tests.fakes.groq_fake import GroqFake
from tests.fakes.server import wait_for
from tests.processes import ServiceProcess, fake_backed_env, start_api, start_worker
from tests.redis_ha import SentinelGroup

pytestmark = pytest.mark.integration

USERS, PER_USER = 16, 6


@pytest.fixture
def group(tmp_path: Path) -> Iterator[SentinelGroup]:
    servers = SentinelGroup(tmp_path / "redis").start()
    yield servers
    servers.stop()


@pytest.fixture
def services(
    group: SentinelGroup, graph_fake: GraphFake, groq_fake: GroqFake, tmp_path: Path
) -> Iterator[tuple[str, ServiceProcess, ServiceProcess]]:
    env = fake_backed_env("", graph_fake.url, graph_fake.version, groq_fake.url) | group.env()
    env |= {
        "CONVERSATION_LEASE_SECONDS": "4",
        "TASK_SOFT_TIME_LIMIT": "20",
        "TASK_TIME_LIMIT": "25",
        "CELERY_VISIBILITY_TIMEOUT": "30",
        "RATE_LIMITS_ENABLED": "false",
        "LOG_LEVEL": "INFO",
    }
    graph_fake.reset()
    groq_fake.reset()
    groq_fake.chat_delay = 0.02  # jobs take a moment, so the primary dies while some are running
    api, url = start_api(env, tmp_path / "api.log")
    worker = start_worker(env, tmp_path / "worker.log", "--pool", "all", "--concurrency", "3")
    yield url, api, worker
    worker.stop()
    api.stop()


def test_sigkilled_primary_mid_burst_every_acknowledged_message_is_answered_once_in_order(
    group: SentinelGroup,
    services: tuple[str, ServiceProcess, ServiceProcess],
    graph_fake: GraphFake,
) -> None:
    url, api, worker = services
    old_port = group.primary.port
    senders = users(USERS)

    def crash_and_recover() -> None:
        group.kill_primary()
        group.wait_for_promotion(old_port)
        # With one replica, the promoted one has none left to confirm a WAIT: webhooks answer 503 (and Meta
        # redelivers) until the old primary's restart brings it back as a replica.
        group.revive(old_port)

    burst = run_burst(url, senders, PER_USER, kill_after=USERS * PER_USER // 3, kill=crash_and_recover)
    promoted = group.primary
    assert promoted.port != old_port

    assert burst.unacked == 0
    assert burst.non_200 > 0  # the failover really was in the way: Meta's redelivery path was taken
    assert wait_for_answers(burst, graph_fake, timeout=60)
    with promoted.client() as client:
        wait_for(lambda: _drained(client), timeout=30, what="every mailbox on the new primary to drain")
    verdict = judge(burst, graph_fake)
    assert verdict.clean, verdict
    for user in senders:  # exactly once, in order: the full list of answers, not only the acknowledged ones
        assert graph_fake.texts_to(user) == [f"You said: {text}" for text in burst.acked[user]]
    # Nothing was restarted: the same API and worker processes served before and after the failover.
    assert api.process is not None and api.process.poll() is None
    assert worker.process is not None and worker.process.poll() is None
    assert httpx.get(f"{url}/ready", timeout=5).status_code == 200


def _drained(client: redis.Redis) -> bool:
    return not client.keys("lp:inbox:*") and client.zcard("lp:leases") == 0
