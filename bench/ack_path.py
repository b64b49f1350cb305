"""Ack-path benchmark: our API against a bare-ASGI floor, same uvicorn settings, same core, same run.

Both servers are pinned to core 0; wrk (one thread, 50 connections) and redis-server share core 1. Every webhook
is signed, and every message id is unique, so each 200 is a real durable ack: signature verified, deduplicated,
job in Redis. After each run the jobs are counted in Redis.

    python -m bench.ack_path [--seconds 10] [--connections 50]
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import common
from bench.payloads import status_bodies, text_bodies, write_pool
from tests.fakes.graph_fake import PHONE_NUMBER_ID
from tests.webhooks import APP_SECRET, VERIFY_TOKEN

BATCH = 100


@dataclass
class Payload:
    name: str
    per_body: int  # messages per webhook (0: status-only, nothing is enqueued)
    rate_guess: int  # webhooks/s the pool is sized for, with headroom; a wrapped pool is reported


PAYLOADS = (
    Payload("single text message", 1, 25_000),
    Payload(f"{BATCH}-message batch", BATCH, 1_200),
    Payload("status-only (delivered)", 0, 0),
)


def make_pool(workdir: Path, payload: Payload, count: int, start: int) -> tuple[Path, int]:
    path = workdir / f"pool-{payload.per_body}-{start}.txt"
    bodies = (
        status_bodies(count, start) if payload.per_body == 0 else text_bodies(count, start, per_body=payload.per_body)
    )
    return path, write_pool(path, bodies)


def jobs_in_redis(server: common.Redis) -> tuple[int, int]:
    """(jobs held in conversation mailboxes, jobs on the Celery `text` list). Every job sits in its mailbox until
    a worker completes it; the head of each mailbox is also on the Celery queue."""
    client = server.client
    keys = list(client.scan_iter("lp:inbox:*", count=5000))
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.llen(key)
    total = sum(pipe.execute()) if keys else 0
    return total, int(client.llen("text"))


def run(seconds: float, connections: int, quick: bool = False) -> list[dict[str, object]]:
    facts = common.machine()
    rows: list[list[object]] = []
    results: list[dict[str, object]] = []
    warm = 0.0 if quick else 2.0
    pause = 0.3 if quick else 1.0
    with tempfile.TemporaryDirectory(prefix="bench-ack-") as tmp:
        workdir = Path(tmp)
        redis_server = common.Redis(workdir)
        env = common.python_env(
            REDIS_URL=redis_server.url,
            APP_SECRET=APP_SECRET,
            VERIFY_TOKEN=VERIFY_TOKEN,
            PHONE_NUMBER_ID=PHONE_NUMBER_ID,
        )
        floor = common.start_service(
            common.pinned(common.SERVER_CORE, common.py("-m", "bench.floor_app")), env, workdir / "floor.log", "/"
        )
        api = common.start_service(
            common.pinned(common.SERVER_CORE, common.py("-m", "loopera.cli", "api", "--host", "127.0.0.1")),
            env,
            workdir / "api.log",
        )
        facts["servers"] = f"uvicorn (uvloop, httptools), 1 process each, pinned to core {common.SERVER_CORE}"
        facts["load generator"] = (
            f"wrk -t1 -c{connections}, {seconds:g} s per run, core {common.LOAD_CORE} (shared with redis-server)"
        )
        try:
            start = 0
            floors: list[float] = []
            for payload in PAYLOADS:
                count = max(200, int(payload.rate_guess * seconds * 1.3)) if payload.per_body else 2000
                warm_pool, _ = make_pool(workdir, payload, 2000 if payload.per_body <= 1 else 100, 10**9 + start)
                pool, size = make_pool(workdir, payload, count, start)
                start += count * max(payload.per_body, 1)

                if warm:
                    common.wrk(floor.url, warm_pool, warm, connections)
                base = common.wrk(floor.url, pool, seconds, connections)
                floors.append(base.rps)
                if warm:
                    common.wrk(api.url, warm_pool, warm, connections)
                common.settle(pause)  # wrk stops with requests in flight: let the server finish them, then forget them
                redis_server.client.flushdb()
                ours = common.wrk(api.url, pool, seconds, connections)
                common.settle(pause)

                acked = ours.requests - ours.non2xx
                note = ""
                if payload.per_body:
                    mailboxed, queued = jobs_in_redis(redis_server)
                    expected = acked * payload.per_body
                    in_flight = connections * payload.per_body  # sent but not yet counted by wrk when it stopped
                    durable = expected <= mailboxed <= expected + in_flight and ours.requests <= size
                    note = f"{mailboxed} jobs in Redis for {expected} acked msgs ({queued} on Celery queue)"
                    if ours.requests > size:
                        note += f"; POOL WRAPPED ({size} bodies), duplicates were acked"
                    elif not durable:
                        note += "; MISMATCH"
                else:
                    durable = True
                if ours.non2xx or ours.errors:
                    note += f"; {ours.non2xx} non-2xx, {ours.errors} socket errors"
                msgs = ours.rps * max(payload.per_body, 1) if payload.per_body else 0
                rows.append(
                    [
                        payload.name,
                        "floor (bare ASGI)",
                        f"{base.rps:,.0f}",
                        "",
                        common.ms(base.p50_us),
                        common.ms(base.p99_us),
                        "1.00",
                        "",
                    ]
                )
                rows.append(
                    [
                        payload.name,
                        "loopera api",
                        f"{ours.rps:,.0f}",
                        f"{msgs:,.0f}" if msgs else "-",
                        common.ms(ours.p50_us),
                        common.ms(ours.p99_us),
                        f"{ours.rps / base.rps:.2f}",
                        note,
                    ]
                )
                results.append(
                    {
                        "payload": payload.name,
                        "floor_rps": base.rps,
                        "api_rps": ours.rps,
                        "api_p50_ms": ours.p50_us / 1000,
                        "api_p99_ms": ours.p99_us / 1000,
                        "ratio": ours.rps / base.rps,
                        "durable": durable,
                        "note": note,
                    }
                )

                if payload.per_body == BATCH:
                    redis_server.client.flushdb()
                    solo, _ = make_pool(workdir, payload, int(1000 * min(seconds, 5)), 2 * 10**9 + start)
                    one = common.wrk(api.url, solo, min(seconds, 5), 1)
                    rows.append(
                        [
                            payload.name,
                            "loopera api, 1 connection",
                            f"{one.rps:,.0f}",
                            f"{one.rps * BATCH:,.0f}",
                            common.ms(one.p50_us),
                            common.ms(one.p99_us),
                            "",
                            "latency of one batch on an idle server",
                        ]
                    )
                    results.append(
                        {
                            "payload": payload.name + " (1 connection)",
                            "api_rps": one.rps,
                            "api_p50_ms": one.p50_us / 1000,
                            "api_p99_ms": one.p99_us / 1000,
                        }
                    )
                redis_server.client.flushdb()
            # The floor again at the end: how much it moved is the noise other processes on the machine caused.
            again = common.wrk(floor.url, make_pool(workdir, PAYLOADS[0], 2000, 3 * 10**9)[0], seconds, connections)
            drift = abs(again.rps - floors[0]) / floors[0]
            facts["noise"] = (
                f"floor (single text) {floors[0]:,.0f} req/s at start, {again.rps:,.0f} at end ({drift:.0%} apart)"
            )
        finally:
            api.stop()
            floor.stop()
            redis_server.stop()
    common.print_header("Ack path: loopera api vs bare-ASGI floor (same run)", facts)
    common.print_table(["payload", "server", "webhooks/s", "msgs/s", "p50 ms", "p99 ms", "x floor", "check"], rows)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="a tiny load that only proves the benchmark runs")
    args = parser.parse_args()
    run(1.0 if args.quick else args.seconds, args.connections, args.quick)


if __name__ == "__main__":
    main()
