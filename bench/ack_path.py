"""Ack-path benchmark: our API against a bare-ASGI floor, same uvicorn settings, same core, same run.

Both servers are pinned to core 0; wrk (one thread, 50 connections) and redis-server share core 1. Every webhook
is signed, and every message id is unique, so each 200 is a real durable ack: signature verified, deduplicated,
job in Redis. After each run the jobs are counted in Redis.

The same run then measures the API against Redis in each durability mode (no replica, `appendfsync always`, a
replica and WAIT) and with other Redis clients running the ingest script (bench/ack_variants.py).

    python -m bench.ack_path [--seconds 10] [--connections 50] [--repeat 3] [--no-variants] [--only status]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from bench import ack_variants, common
from bench.payloads import seed_reply_ledgers, status_bodies, text_bodies, write_pool
from tests.fakes.graph_fake import PHONE_NUMBER_ID
from tests.webhooks import APP_SECRET, VERIFY_TOKEN

BATCH = 100
FLOOR = "floor (bare ASGI)"


@dataclass
class Payload:
    name: str
    per_body: int  # messages per webhook (0: status-only, nothing is enqueued)
    rate_guess: int  # webhooks/s the pool is sized for, with headroom; a wrapped pool is reported
    ours: bool = False  # status-only: it carries our callback data, so the API records it in the reply's ledger


PAYLOADS = (
    Payload("single text message", 1, 25_000),
    Payload(f"{BATCH}-message batch", BATCH, 1_200),
    Payload("status-only (delivered)", 0, 0),
    # The same webhook naming one of our reply parts: one script call recording it in the part's ledger.
    Payload("status-only, our callback data", 0, 0, ours=True),
)
STATUS_POOL = 2000


def make_pool(workdir: Path, payload: Payload, count: int, start: int) -> tuple[Path, int]:
    path = workdir / f"pool-{payload.per_body}-{start}.txt"
    bodies = (
        status_bodies(count, start, payload.ours)
        if payload.per_body == 0
        else text_bodies(count, start, per_body=payload.per_body)
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


def _reference_api(workdir: Path, ref: str, env: dict[str, str]) -> common.Service:
    """The API as of git revision `ref` (same venv), to show what a change bought, measured in the same run."""
    tree = workdir / "ref"
    tree.mkdir()
    archive = subprocess.run(["git", "archive", ref], cwd=common.REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    argv = common.pinned(common.SERVER_CORE, common.py("-m", "loopera.cli", "api", "--host", "127.0.0.1"))
    return common.start_service(argv, {**env, "PYTHONPATH": str(tree)}, workdir / "ref-api.log", cwd=tree)


class _Runner:
    def __init__(self, redis_server: common.Redis, seconds: float, connections: int, quick: bool) -> None:
        self.redis = redis_server
        self.seconds = seconds
        self.connections = connections
        self.warm = 0.0 if quick else 2.0
        self.pause = 0.3 if quick else 1.0

    def floor(self, url: str, pool: Path, warm_pool: Path) -> common.WrkResult:
        if self.warm:
            common.wrk(url, warm_pool, self.warm, self.connections)
        return common.wrk(url, pool, self.seconds, self.connections)

    def api(
        self,
        url: str,
        payload: Payload,
        pool: Path,
        size: int,
        warm_pool: Path,
        pid: int | None = None,
        seed: Callable[[], None] | None = None,
    ) -> tuple[common.WrkResult, bool, str]:
        """One measured run on an empty Redis (then `seed`ed), then the jobs counted: (result, durable, note). With
        `pid`, the result carries that server's CPU time during the measured run."""
        if self.warm:
            common.wrk(url, warm_pool, self.warm, self.connections)
        common.settle(self.pause)  # wrk stops with requests in flight: let the server finish them, then forget them
        self.redis.client.flushdb()
        if seed is not None:
            seed()
        cpu_before = common.cpu_seconds_of(pid) if pid else 0.0
        ours = common.wrk(url, pool, self.seconds, self.connections)
        common.settle(self.pause)
        if pid:
            ours.cpu_seconds = common.cpu_seconds_of(pid) - cpu_before
        note, durable = "", True
        if payload.per_body:
            mailboxed, queued = jobs_in_redis(self.redis)
            expected = (ours.requests - ours.non2xx) * payload.per_body
            in_flight = self.connections * payload.per_body  # sent but not yet counted by wrk when it stopped
            durable = expected <= mailboxed <= expected + in_flight and ours.requests <= size
            note = f"{mailboxed} jobs in Redis for {expected} acked msgs ({queued} on Celery queue)"
            if ours.requests > size:
                note += f"; POOL WRAPPED ({size} bodies), duplicates were acked"
            elif not durable:
                note += "; MISMATCH"
        if ours.non2xx or ours.errors:
            note += f"; {ours.non2xx} non-2xx, {ours.errors} socket errors"
        return ours, durable, note


def median_run(runs: list[common.WrkResult]) -> common.WrkResult:
    """Per-figure medians of several runs (the worst max)."""
    return common.WrkResult(
        requests=round(statistics.median(r.rps for r in runs)),
        seconds=1.0,
        non2xx=sum(r.non2xx for r in runs),
        errors=sum(r.errors for r in runs),
        p50_us=statistics.median(r.p50_us for r in runs),
        p99_us=statistics.median(r.p99_us for r in runs),
        max_us=max(r.max_us for r in runs),
    )


def _row(payload: Payload, server: str, result: common.WrkResult, ratio: float | None, note: str) -> list[object]:
    msgs = result.rps * payload.per_body if server != FLOOR else 0  # the floor enqueues nothing
    return [
        payload.name,
        server,
        f"{result.rps:,.0f}",
        f"{msgs:,.0f}" if msgs else "-",
        common.ms(result.p50_us),
        common.ms(result.p99_us),
        f"{ratio:.2f}" if ratio is not None else "",
        note,
    ]


def _measure_variants(
    workdir: Path, env: dict[str, str], runner_args: tuple[float, int, bool], repeat: int
) -> tuple[list[ack_variants.Table], list[dict[str, object]]]:
    """The durability modes and the ingest clients (bench/ack_variants.py), single text message, same run."""
    groups = {"durability": ack_variants.DURABILITY, "clients": ack_variants.clients()}
    if runner_args[2]:  # quick: the CI smoke run starts only the variants it checks
        groups = {"durability": groups["durability"][:3], "clients": groups["clients"][:2]}
    base_env = {k: v for k, v in env.items() if k != "REDIS_URL"}
    running: dict[str, list[ack_variants.Running]] = {name: [] for name in groups}
    payload = PAYLOADS[0]
    try:
        for name, variants in groups.items():
            for variant in variants:
                index = sum(len(items) for items in running.values())
                running[name].append(ack_variants.start(variant, workdir, base_env, index))
        everything = [item for items in running.values() for item in items]
        count = max(200, int(payload.rate_guess * runner_args[0] * 1.3))
        warm_pool, _ = make_pool(workdir, payload, 2000, 5 * 10**9)
        for round_ in range(repeat):
            pool, size = make_pool(workdir, payload, count, 6 * 10**9 + round_ * count)
            for item in everything:
                runner = _Runner(item.redis, *runner_args)
                result, durable, note = runner.api(item.api.url, payload, pool, size, warm_pool, item.api.pid())
                item.runs.append(result)
                item.durable = item.durable and durable
                item.note = note
        facts = {"payload": payload.name, "rounds": f"median of {repeat}, variants alternating within each round"}
        durability, figures = ack_variants.table("Ack path by Redis durability mode", running["durability"], facts)
        clients, more = ack_variants.table("Ack path by ingest client", running["clients"], facts)
    finally:
        for item in (item for items in running.values() for item in items):
            item.stop()
    return [durability, clients], figures + more


def run(
    seconds: float,
    connections: int,
    quick: bool = False,
    compare: str | None = None,
    repeat: int = 1,
    variants: bool = True,
    variants_only: bool = False,
    only: str = "",
) -> list[dict[str, object]]:
    facts = common.machine()
    rows: list[list[object]] = []
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="bench-ack-") as tmp:
        workdir = Path(tmp)
        redis_server = common.Redis(workdir)
        env = common.python_env(
            REDIS_URL=redis_server.url,
            APP_SECRET=APP_SECRET,
            VERIFY_TOKEN=VERIFY_TOKEN,
            PHONE_NUMBER_ID=PHONE_NUMBER_ID,
        )
        pinned_py = partial(common.pinned, common.SERVER_CORE)
        floor = common.start_service(pinned_py(common.py("-m", "bench.floor_app")), env, workdir / "floor.log", "/")
        api = common.start_service(
            pinned_py(common.py("-m", "loopera.cli", "api", "--host", "127.0.0.1")), env, workdir / "api.log"
        )
        reference = _reference_api(workdir, compare, env) if compare else None
        facts["servers"] = f"uvicorn (uvloop, httptools), 1 process each, pinned to core {common.SERVER_CORE}"
        facts["load generator"] = (
            f"wrk -t1 -c{connections}, {seconds:g} s per run, core {common.LOAD_CORE} (shared with redis-server); "
            f"median of {repeat} round(s), each round measures every server"
        )
        runner = _Runner(redis_server, seconds, connections, quick)
        tables: list[ack_variants.Table] = []
        try:
            start = 0
            floors: list[float] = []
            for payload in [p for p in PAYLOADS if only in p.name] if not variants_only else ():
                count = max(200, int(payload.rate_guess * seconds * 1.3)) if payload.per_body else STATUS_POOL
                warm_pool, _ = make_pool(workdir, payload, 2000 if payload.per_body <= 1 else 100, 10**9 + start)
                bases, ours_runs, old_runs, notes, old_notes = [], [], [], [], []
                durable = True
                # Rounds alternate floor / ours / reference, so a burst of noise from other processes hits all of
                # them alike; the table shows the median round.
                for _ in range(repeat):
                    pool, size = make_pool(workdir, payload, count, start)
                    seed = partial(seed_reply_ledgers, redis_server.client, count, start) if payload.ours else None
                    start += count * max(payload.per_body, 1)
                    bases.append(runner.floor(floor.url, pool, warm_pool))
                    ours, ok, note = runner.api(api.url, payload, pool, size, warm_pool, seed=seed)
                    ours_runs.append(ours)
                    durable = durable and ok
                    notes.append(note)
                    if reference is not None:
                        old, _, old_note = runner.api(reference.url, payload, pool, size, warm_pool, seed=seed)
                        old_runs.append(old)
                        old_notes.append(old_note)
                base, ours = median_run(bases), median_run(ours_runs)
                floors.append(base.rps)
                ratio = statistics.median(o.rps / b.rps for o, b in zip(ours_runs, bases, strict=True))
                note = notes[-1]
                if payload.ours:
                    recorded = sum(1 for _ in redis_server.client.scan_iter("lp:msg:*", count=5000))
                    note = f"{recorded} reply ledgers seeded and updated"
                if payload.per_body and repeat > 1:
                    note = f"{'all' if durable else 'NOT all'} {repeat} rounds durable; last: {note}"
                rows.append(_row(payload, FLOOR, base, 1.0, ""))
                rows.append(_row(payload, "loopera api", ours, ratio, note))
                results.append(
                    {
                        "payload": payload.name,
                        "floor_rps": base.rps,
                        "api_rps": ours.rps,
                        "api_p50_ms": ours.p50_us / 1000,
                        "api_p99_ms": ours.p99_us / 1000,
                        "ratio": ratio,
                        "durable": durable,
                        "note": note,
                    }
                )
                if reference is not None:
                    old = median_run(old_runs)
                    old_ratio = statistics.median(o.rps / b.rps for o, b in zip(old_runs, bases, strict=True))
                    rows.append(_row(payload, f"loopera api @{compare}", old, old_ratio, old_notes[-1]))

                if payload.per_body == BATCH:
                    redis_server.client.flushdb()
                    solo, solo_size = make_pool(workdir, payload, int(1000 * min(seconds, 5)), 2 * 10**9 + start)
                    one = common.wrk(api.url, solo, min(seconds, 5), 1)
                    note = "one batch at a time" + ("; POOL WRAPPED" if one.requests > solo_size else "")
                    rows.append(_row(payload, "loopera api, 1 connection", one, None, note))
                    results.append(
                        {
                            "payload": payload.name + " (1 connection)",
                            "api_rps": one.rps,
                            "api_p50_ms": one.p50_us / 1000,
                            "api_p99_ms": one.p99_us / 1000,
                        }
                    )
                redis_server.client.flushdb()
            if variants:
                tables, figures = _measure_variants(workdir, env, (seconds, connections, quick), repeat)
                results += figures
            # The floor again at the end: how much it moved is the noise other processes on the machine caused.
            again = common.wrk(floor.url, make_pool(workdir, PAYLOADS[0], 2000, 3 * 10**9)[0], seconds, connections)
            first = floors[0] if floors else again.rps
            drift = abs(again.rps - first) / first
            facts["noise"] = (
                f"floor (single text) {first:,.0f} req/s at start, {again.rps:,.0f} at end ({drift:.0%} apart)"
            )
        finally:
            for service in (reference, api, floor):
                if service is not None:
                    service.stop()
            redis_server.stop()
    common.print_header("Ack path: loopera api vs bare-ASGI floor (same run)", facts)
    common.print_table(["payload", "server", "webhooks/s", "msgs/s", "p50 ms", "p99 ms", "x floor", "check"], rows)
    ack_variants.print_tables(tables)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="a tiny load that only proves the benchmark runs")
    parser.add_argument("--compare", metavar="GIT_REF", help="also measure the API as of this git revision")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per payload; the table shows the median")
    parser.add_argument(
        "--no-variants", action="store_true", help="skip the durability modes and ingest clients (bench/ack_variants)"
    )
    parser.add_argument("--variants-only", action="store_true", help="only the durability modes and ingest clients")
    parser.add_argument("--only", default="", help="only the payloads whose name contains this (e.g. status)")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.repeat = 1.0, 1
    variants = not args.no_variants
    run(args.seconds, args.connections, args.quick, args.compare, args.repeat, variants, args.variants_only, args.only)


if __name__ == "__main__":
    main()
