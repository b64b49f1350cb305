"""Memory benchmark: RSS/PSS of the API and of one worker per pool, idle and under load; and which Celery pool
and concurrency serve IO-bound Groq calls with the least memory.

Groq is the loopback fake, delaying each chat completion by --groq-delay seconds (a real completion takes about
that long), so a worker's throughput is bounded by how many calls it keeps in flight: its concurrency.

    python -m bench.memory [--groq-delay 0.25] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from bench import common
from bench.payloads import text_bodies, write_pool
from bench.stack import Stack, make_requests, message_ids, post_all, stack
from tests.fakes.groq_fake import GroqFake
from tests.fakes.server import wait_for

# (pool implementation, concurrency) pairs compared for the text pool.
CONFIGS = (("prefork", 2), ("prefork", 4), ("prefork", 8), ("threads", 8), ("threads", 16), ("threads", 32))


class SlowGroqFake(GroqFake):
    """The suite's Groq fake, answering chat completions after a fixed delay (an IO-bound model call)."""

    delay = 0.25

    async def _chat(self, request: Request) -> Response:
        await asyncio.sleep(self.delay)
        return await super()._chat(request)


@contextmanager
def peak_memory(pid: int) -> Iterator[list[float]]:
    """Samples the process tree every 100 ms; yields [peak RSS, peak PSS] in MiB, filled in on exit."""
    peak = [0.0, 0.0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            rss, pss, _ = common.memory_mb(pid)
            peak[0], peak[1] = max(peak[0], rss), max(peak[1], pss)
            stop.wait(0.1)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()


def _api_rows(s: Stack, seconds: float) -> list[list[object]]:
    pid = s.api.pid()
    rss, pss, _ = common.memory_mb(pid)
    pool = s.workdir / "api-pool.txt"
    write_pool(pool, text_bodies(int(15_000 * seconds), 5 * 10**8))
    with peak_memory(pid) as peak:
        result = common.wrk(s.api.url, pool, seconds, 50)
    common.settle(1.0)
    s.redis.client.flushdb()  # no worker is running yet: drop the jobs, or the worker rows would serve them
    return [
        [
            "API (uvicorn)",
            "-",
            1,
            f"{rss:.0f}",
            f"{pss:.0f}",
            f"{peak[0]:.0f}",
            f"{peak[1]:.0f}",
            f"{result.rps:,.0f} webhooks/s (wrk, 50 conns)",
        ],
    ]


def _worker_row(s: Stack, queue: str, impl: str, concurrency: int, messages: int, start: int) -> list[object]:
    worker = s.start_worker(
        "--pool", queue, "--concurrency", str(concurrency), "--pool-impl", impl, name=f"{queue}-{impl}-{concurrency}"
    )
    time.sleep(1.0)  # prefork children finish importing
    rss, pss, procs = common.memory_mb(worker.pid())
    load = "-"
    peak = [rss, pss]
    if queue == "text" and messages:
        bodies = text_bodies(messages, start, conversations=messages)
        requests = make_requests(s.workdir, f"mem-{impl}-{concurrency}", bodies)
        with peak_memory(worker.pid()) as peak:
            began = time.perf_counter()
            asyncio.run(post_all(s.api.url, requests, 16))
            ids = [message_ids(body)[0] for _, body in requests]
            wait_for(lambda: all(i in s.graph.replied_at for i in ids), timeout=120, what="replies")
            took = time.perf_counter() - began
        load = f"{messages / took:,.1f} replies/s"
        s.graph.reset()
    s.stop_workers()
    return [
        f"{queue} worker",
        f"{impl} x{concurrency}",
        procs,
        f"{rss:.0f}",
        f"{pss:.0f}",
        f"{peak[0]:.0f}",
        f"{peak[1]:.0f}",
        load,
    ]


def run(groq_delay: float, quick: bool = False) -> list[list[object]]:
    facts = common.machine()
    SlowGroqFake.delay = groq_delay
    rows: list[list[object]] = []
    import bench.stack as stack_module

    original = stack_module.GroqFake
    stack_module.GroqFake = SlowGroqFake  # type: ignore[misc]
    try:
        with tempfile.TemporaryDirectory(prefix="bench-mem-") as tmp, stack(Path(tmp)) as s:
            rows += _api_rows(s, 1.0 if quick else 5.0)
            for queue in () if quick else ("audio", "vision"):
                rows.append(_worker_row(s, queue, "prefork", 4, 0, 0))
            configs = (("prefork", 1), ("threads", 2)) if quick else CONFIGS
            for n, (impl, concurrency) in enumerate(configs):
                messages = 4 if quick else max(40, concurrency * 8)
                rows.append(_worker_row(s, "text", impl, concurrency, messages, (n + 1) * 10**6))
    finally:
        stack_module.GroqFake = original  # type: ignore[misc]
    facts["groq"] = f"loopback fake, every chat completion takes {groq_delay * 1000:.0f} ms"
    facts["RSS vs PSS"] = "summed over the worker's processes; PSS shares copy-on-write pages fairly between them"
    common.print_header("Memory: API and workers, idle and under load", facts)
    headers = ["process", "pool", "procs", "idle RSS MiB", "idle PSS MiB", "peak RSS MiB", "peak PSS MiB", "load"]
    common.print_table(headers, rows)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groq-delay", type=float, default=0.25)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    run(args.groq_delay, args.quick)


if __name__ == "__main__":
    main()
