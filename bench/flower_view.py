"""What the API's hand-built Celery `task-sent` events cost on the ack path, and what Flower shows without them.

The API enqueues without Celery, so Flower hears of a job only from the `task-sent` event the API publishes
(`api/task_events.py`, `api/celery_events.py`) or, later, from the worker's `task-received`. Flower's own broker
view (its Broker page and `/api/queues/length`) needs no event: it reads the queue lengths from Redis. This runs
two APIs, announcing and not, on the same core in alternating rounds (single-text webhooks, wrk as in
bench/ack_path.py) and, with no worker running, counts what each view shows: the events received on Celery's
event topic, and the queue lengths read by Flower's own broker class.

    python -m bench.flower_view [--seconds 8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import threading
from functools import partial
from pathlib import Path

import redis

from api import celery_events
from bench import common
from bench.ack_path import PAYLOADS, _Runner, make_pool
from tests.fakes.graph_fake import PHONE_NUMBER_ID
from tests.webhooks import APP_SECRET, VERIFY_TOKEN

QUEUES = ["text", "audio", "vision"]


class EventCounter:
    """Counts `task-sent` events on Celery's event topic, as Flower's event receiver would get them."""

    def __init__(self, url: str) -> None:
        self._pubsub = redis.Redis.from_url(url).pubsub(ignore_subscribe_messages=True)
        self._pubsub.psubscribe(celery_events.topic(0) + "*")
        self.count = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._stop = threading.Event()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._pubsub.get_message(timeout=0.2) is not None:
                self.count += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._pubsub.close()


def flower_broker_view(url: str) -> dict[str, int]:
    """Queue lengths as Flower's Broker page shows them (flower.utils.broker, LLEN per queue)."""
    from flower.utils.broker import Broker

    async def read() -> list[dict[str, object]]:
        return list(await Broker(url).queues(QUEUES))

    return {str(q["name"]): int(str(q["messages"])) for q in asyncio.run(read())}


def cpu_seconds(pid: int) -> float:
    """CPU seconds of a process and its reaped children, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def run(seconds: float = 8.0, repeat: int = 3, quick: bool = False) -> dict[str, object]:
    facts = common.machine()
    payload = PAYLOADS[0]
    with tempfile.TemporaryDirectory(prefix="bench-flower-") as tmp:
        workdir = Path(tmp)
        redis_server = common.Redis(workdir)
        env = common.python_env(
            REDIS_URL=redis_server.url,
            APP_SECRET=APP_SECRET,
            VERIFY_TOKEN=VERIFY_TOKEN,
            PHONE_NUMBER_ID=PHONE_NUMBER_ID,
        )
        argv = partial(common.pinned, common.SERVER_CORE)(common.py("-m", "loopera.cli", "api", "--host", "127.0.0.1"))
        servers = {
            f"events {state}": common.start_service(
                argv, {**env, "ANNOUNCE_TASK_SENT_EVENTS": flag}, workdir / f"{state}.log"
            )
            for state, flag in (("on", "true"), ("off", "false"))
        }
        # No warm-up run inside a round (the rounds alternate, so every API is warm after the first), so that the
        # API's CPU seconds over the round belong to the measured requests only.
        runner = _Runner(redis_server, seconds, 50, quick=True)
        runs: dict[str, list[common.WrkResult]] = {name: [] for name in servers}
        cpu_per_request: dict[str, list[float]] = {name: [] for name in servers}
        seen: dict[str, tuple[int, int, dict[str, int]]] = {}
        start = 0
        try:
            warm_pool, _ = make_pool(workdir, payload, 200 if quick else 2000, 10**9)
            for _ in range(repeat):
                for name, service in servers.items():
                    count = 2000 if quick else max(200, int(payload.rate_guess * seconds * 1.3))
                    pool, size = make_pool(workdir, payload, count, start)
                    start += size
                    counter = EventCounter(redis_server.url)
                    cpu_before = cpu_seconds(service.pid())
                    result, _, _ = runner.api(service.url, payload, pool, size, warm_pool)
                    common.settle(0.5)  # the announcer flushes every 50 ms
                    cpu_per_request[name].append((cpu_seconds(service.pid()) - cpu_before) / max(1, result.requests))
                    counter.close()
                    runs[name].append(result)
                    acked = result.requests - result.non2xx
                    seen[name] = (acked, counter.count, flower_broker_view(redis_server.url))
        finally:
            for service in servers.values():
                service.stop()
            redis_server.stop()
    rows = []
    on = statistics.median(r.rps for r in runs["events on"])
    for name, results in runs.items():
        rps = statistics.median(r.rps for r in results)
        p99 = statistics.median(r.p99_us for r in results)
        cpu = statistics.median(cpu_per_request[name]) * 1e6
        acked, events, queues = seen[name]
        shown = f"{events:,} of {acked:,}"
        rows.append([name, f"{rps:,.0f}", common.ms(p99), f"{rps / on:.2f}", f"{cpu:.0f} us", shown, queues["text"]])
    facts["workload"] = (
        f"single-text webhooks, wrk -t1 -c50, {seconds:g} s per run, median of {repeat} alternating rounds"
    )
    common.print_header("Flower task-sent events: ack-path cost and what Flower sees (same run)", facts)
    common.print_table(
        [
            "API",
            "webhooks/s",
            "p99 ms",
            "x events on",
            "API CPU per webhook",
            "task-sent events (last round)",
            "broker view: text queue",
        ],
        rows,
    )
    return {name: statistics.median(r.rps for r in results) for name, results in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    run(args.seconds, args.repeat, args.quick)


if __name__ == "__main__":
    main()
