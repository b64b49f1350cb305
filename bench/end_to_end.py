"""End-to-end benchmark: signed webhook -> API -> Redis -> Celery text worker -> (instant) Groq fake -> reply
recorded at the Graph fake. With Groq answering instantly, the time is our overhead: the ack, the queue, the
worker's claim/memory/outbox bookkeeping and its three HTTP calls (read receipt + typing, chat, send).

    python -m bench.end_to_end [--light 100] [--burst 400] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bench import common
from bench.payloads import text_bodies
from bench.stack import Stack, make_requests, message_ids, percentile, post_all, stack
from tests.fakes.server import wait_for


def _phase(s: Stack, name: str, count: int, start: int, interval: float, senders: int) -> list[object]:
    requests = make_requests(s.workdir, name, text_bodies(count, start, conversations=count))
    began = time.perf_counter()
    sent = asyncio.run(post_all(s.api.url, requests, senders, interval))
    ids = [message_ids(body)[0] for _, body in requests]
    wait_for(lambda: all(i in s.graph.replied_at for i in ids), timeout=60 + count / 10, what=f"replies ({name})")
    finished = max(s.graph.replied_at[i] for i in ids)
    overhead = [(s.graph.replied_at[i] - sent_at) * 1000 for i, (sent_at, _, _) in zip(ids, sent, strict=True)]
    acks = [(acked - sent_at) * 1000 for sent_at, acked, _ in sent]
    bad = sum(1 for *_, status in sent if status != 200)
    s.graph.reset()
    return [
        name,
        count,
        f"{count / (finished - began):,.0f}",
        f"{percentile(acks, 50):.1f}",
        f"{percentile(overhead, 50):.1f}",
        f"{percentile(overhead, 99):.1f}",
        f"{max(overhead):.1f}",
        bad,
    ]


WORKERS = (("prefork", 4), ("threads", 16))


def run(light: int, burst: int, workers: tuple[tuple[str, int], ...] = WORKERS) -> list[list[object]]:
    facts = common.machine()
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp, stack(Path(tmp)) as s:
        facts["services"] = (
            "1 API process, 1 text worker, redis-server; the Graph and Groq fakes (instant answers) and the load "
            "generator (httpx) share this benchmark's process, so at saturation they compete for the GIL"
        )
        facts["measured"] = "from sending the webhook to the reply arriving at the Graph fake"
        for n, (impl, concurrency) in enumerate(workers):
            s.start_worker("--pool", "text", "--concurrency", str(concurrency), "--pool-impl", impl, name=f"e2e{n}")
            warm = make_requests(s.workdir, f"warm{n}", text_bodies(8, 10**9 + n * 100, conversations=8))
            asyncio.run(post_all(s.api.url, warm, 1, 0.05))
            ids = [message_ids(body)[0] for _, body in warm]
            wait_for(lambda ids=ids: all(i in s.graph.replied_at for i in ids), timeout=60, what="warm-up replies")
            s.graph.reset()
            worker = f"{impl} x{concurrency}"
            base = (n + 1) * 10**7
            rows.append([worker, *_phase(s, "light (1 msg every 50 ms)", light, base, 0.05, 1)])
            rows.append([worker, *_phase(s, f"saturating ({burst} msgs, 32 senders)", burst, base + 10**6, 0.0, 32)])
            s.stop_workers()
    common.print_header("End to end: webhook -> reply at the Graph fake (instant Groq)", facts)
    headers = ["text worker", "load", "msgs", "replies/s", "ack p50 ms", "p50 ms", "p99 ms", "max ms", "non-200"]
    common.print_table(headers, rows)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--light", type=int, default=100)
    parser.add_argument("--burst", type=int, default=400)
    parser.add_argument("--quick", action="store_true", help="a tiny load that only proves the benchmark runs")
    args = parser.parse_args()
    if args.quick:
        args.light, args.burst = 5, 10
    run(args.light, args.burst)


if __name__ == "__main__":
    main()
