"""The ack-path benchmark's variants, measured in the same run as its floor: the API against Redis in each durability
mode, and the API with other Redis clients running the ingest script (bench/ingest_clients.py).

Every variant has its own redis-server(s) on the load core and its own API process on the server core, all started
together; rounds alternate the variants, so noise from other processes hits them alike. The payload is the single
text message, and after each run the jobs are counted in Redis as for the main table.
"""

from __future__ import annotations

import importlib.util
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from bench import common

SYNC_EVERYSEC = ("--appendonly", "yes", "--appendfsync", "everysec")
SYNC_ALWAYS = ("--appendonly", "yes", "--appendfsync", "always")


@dataclass(frozen=True)
class Variant:
    name: str
    redis_args: tuple[str, ...] = ()
    replica: bool = False
    env: tuple[tuple[str, str], ...] = ()
    module: str = "loopera.cli"  # `loopera api`, or bench.ingest_clients for another client


DURABILITY = (
    Variant("1 Redis, AOF everysec (baseline)", SYNC_EVERYSEC),
    Variant("1 Redis, AOF always", SYNC_ALWAYS),
    Variant("primary + 1 replica, AOF everysec, WAIT 1", SYNC_EVERYSEC, True, (("REDIS_ACK_REPLICAS", "1"),)),
    Variant("1 Redis, no persistence", ()),
)
_CLIENTS = (
    ("hand-written RESP client, one multiplexed connection (baseline)", "resp", "hiredis"),
    ("redis.asyncio, one pipeline per loop pass (the API's)", "channel", "redis"),
    ("redis.asyncio, a pooled connection per call", "redis-py", "redis"),
    ("coredis 6.9.0", "coredis", "coredis"),
    ("valkey-glide 2.5.3", "glide", "glide"),
)


def clients() -> tuple[Variant, ...]:
    """The client variants whose library is installed (`make bench` installs the `bench` dependency group; the test
    environment does not have coredis and valkey-glide, so CI's smoke run measures the others)."""
    return tuple(
        Variant(name, (), False, (("BENCH_INGEST_CLIENT", client),), "bench.ingest_clients")
        for name, client, module in _CLIENTS
        if importlib.util.find_spec(module) is not None
    )


@dataclass
class Running:
    variant: Variant
    redis: common.Redis
    replica: common.Redis | None
    api: common.Service
    runs: list[common.WrkResult] = field(default_factory=list)
    durable: bool = True
    note: str = ""

    def stop(self) -> None:
        self.api.stop()
        for server in (self.replica, self.redis):
            if server is not None:
                server.stop()


def start(variant: Variant, workdir: Path, base_env: dict[str, str], index: int) -> Running:
    redis_server = common.Redis(workdir, extra=variant.redis_args)
    replica = common.Redis(workdir, extra=variant.redis_args, replica_of=redis_server.port) if variant.replica else None
    if replica is not None:
        common.wait_for_replica(redis_server)
    env = {**base_env, "REDIS_URL": redis_server.url, **dict(variant.env)}
    argv = common.pinned(common.SERVER_CORE, common.py("-m", variant.module, *_api_args(variant)))
    api = common.start_service(argv, env, workdir / f"variant-{index}.log")
    return Running(variant, redis_server, replica, api)


def _api_args(variant: Variant) -> list[str]:
    return ["api", "--host", "127.0.0.1"] if variant.module == "loopera.cli" else []


Table = tuple[str, dict[str, str], list[list[object]]]


def print_tables(tables: list[Table]) -> None:
    for title, facts, rows in tables:
        common.print_header(title, facts)
        headers = ["variant", "webhooks/s", "p50 ms", "p99 ms", "x baseline", "API CPU us/ack", "check"]
        common.print_table(headers, rows)


def table(title: str, running: list[Running], facts: dict[str, str]) -> tuple[Table, list[dict[str, object]]]:
    """One table of medians, each row against the first (the baseline), and its figures."""
    base = statistics.median(r.rps for r in running[0].runs)
    base_cpu = statistics.median(r.cpu_us_per_request for r in running[0].runs)
    rows, results = [], []
    for item in running:
        rps = statistics.median(r.rps for r in item.runs)
        p50 = statistics.median(r.p50_us for r in item.runs)
        p99 = statistics.median(r.p99_us for r in item.runs)
        cpu = statistics.median(r.cpu_us_per_request for r in item.runs)
        check = ("durable" if item.durable else "NOT DURABLE") + (f"; {item.note}" if item.note else "")
        cost = f"{cpu:,.0f} ({cpu / base_cpu:.2f}x)" if base_cpu else "-"
        rows.append(
            [item.variant.name, f"{rps:,.0f}", common.ms(p50), common.ms(p99), f"{rps / base:.2f}", cost, check]
        )
        results.append(
            {
                "variant": item.variant.name,
                "api_rps": rps,
                "api_p99_ms": p99 / 1000,
                "api_cpu_us_per_ack": cpu,
                "durable": item.durable,
            }
        )
    return (title, facts, rows), results
