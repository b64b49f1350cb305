"""Failover experiment: does a SIGKILLed Redis primary lose acknowledged messages, with and without WAIT?

Runs the integration test's scenario (tests/failover.py) several times per mode on fresh processes: a primary, one
replica and three Sentinels, the real API and one Celery worker, a burst of webhooks from many users, `kill -9` of
the primary once a third of them were acknowledged, the old primary restarted (Sentinel makes it a replica), every
non-200 redelivered. Then it counts, per mode, acknowledged messages never answered (lost), answered twice, and
answered out of order. Not a CI check: `tests/integration/test_failover.py` asserts the WAIT mode once.

    python -m bench.failover [--rounds 5] [--users 32] [--per-user 8]
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import tempfile
import time
from pathlib import Path

from bench import common
from tests.failover import judge, run_burst, users, wait_for_answers
from tests.fakes.graph_fake import GraphFake
from tests.fakes.groq_fake import GroqFake
from tests.processes import fake_backed_env, start_api, start_worker
from tests.redis_ha import SentinelGroup

# (name, REDIS_ACK_REPLICAS, replicas): with one replica the promoted primary has none left until the old primary
# is back; with two, one stays to confirm WAITs.
MODES = (("WAIT 1, 1 replica", "1", 1), ("no WAIT, 1 replica", "0", 1), ("WAIT 1, 2 replicas", "1", 2))


def one_round(
    workdir: Path,
    graph: GraphFake,
    groq: GroqFake,
    ack_replicas: str,
    senders: list[str],
    per_user: int,
    replicas: int = 1,
) -> list[object]:
    with contextlib.ExitStack() as stack:
        group = SentinelGroup(workdir / "redis", replicas=replicas)
        stack.callback(group.stop)
        group.start()
        return _measure(stack, workdir, group, graph, groq, ack_replicas, senders, per_user)


def _measure(
    stack: contextlib.ExitStack,
    workdir: Path,
    group: SentinelGroup,
    graph: GraphFake,
    groq: GroqFake,
    ack_replicas: str,
    senders: list[str],
    per_user: int,
) -> list[object]:
    env = fake_backed_env("", graph.url, graph.version, groq.url) | group.env()
    env |= {
        "REDIS_ACK_REPLICAS": ack_replicas,
        "CONVERSATION_LEASE_SECONDS": "4",
        "TASK_SOFT_TIME_LIMIT": "20",
        "TASK_TIME_LIMIT": "25",
        "CELERY_VISIBILITY_TIMEOUT": "30",
        "RATE_LIMITS_ENABLED": "false",
        "LOG_LEVEL": "INFO",
    }
    graph.reset()
    groq.reset()
    groq.chat_delay = 0.02
    api, url = start_api(env, workdir / "api.log")
    stack.callback(api.stop)
    worker = start_worker(env, workdir / "worker.log", "--pool", "all", "--concurrency", "3")
    stack.callback(worker.stop)
    old_port = group.primary.port
    times: dict[str, float] = {}

    def crash_and_recover() -> None:
        times["kill"] = time.monotonic()
        group.kill_primary()
        group.wait_for_promotion(old_port)
        times["promoted"] = time.monotonic()
        group.revive(old_port)
        times["revived"] = time.monotonic()

    total = len(senders) * per_user
    burst = run_burst(url, senders, per_user, kill_after=total // 3, kill=crash_and_recover)
    answered_all = wait_for_answers(burst, graph, timeout=60)
    verdict = judge(burst, graph)
    return [
        burst.total_acked(),
        burst.non_200,
        f"{burst.refusing_seconds:.1f}",
        f"{times['promoted'] - times['kill']:.1f}",
        f"{times['revived'] - times['kill']:.1f}",
        verdict.lost,
        verdict.duplicated,
        verdict.out_of_order,
        "yes" if answered_all else "no",
    ]


def run(rounds: int, user_count: int, per_user: int) -> list[list[object]]:
    facts = common.machine()
    facts["scenario"] = (
        f"{user_count} users x {per_user} messages, kill -9 of the primary after a third were acknowledged; "
        "3 Sentinels (down-after 1 s); the old primary restarted right after the promotion"
    )
    rows: list[list[object]] = []
    graph, groq = GraphFake(), GroqFake()
    graph.server.start()
    groq.server.start()
    try:
        for name, ack_replicas, replicas in MODES:
            for n in range(rounds):
                workdir = Path(tempfile.mkdtemp(prefix="bench-failover-"))
                row = one_round(workdir, graph, groq, ack_replicas, users(user_count), per_user, replicas)
                if row[-4:] == [0, 0, 0, "yes"]:
                    shutil.rmtree(workdir)
                else:
                    row.append(f"logs kept in {workdir}")
                rows.append([name, n + 1, *row])
                print(rows[-1], flush=True)
    finally:
        graph.server.stop()
        groq.server.stop()
    common.print_header("Failover: acknowledged messages after kill -9 of the Redis primary", facts)
    headers = ["mode", "round", "acked", "non-200", "refusing s", "promoted s", "replica back s", "lost", "twice"]
    headers.append("out of order")
    common.print_table([*headers, "all answered"], rows)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--per-user", type=int, default=8)
    args = parser.parse_args()
    run(args.rounds, args.users, args.per_user)


if __name__ == "__main__":
    main()
