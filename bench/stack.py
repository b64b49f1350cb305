"""The whole service for the end-to-end and memory benchmarks: real Redis, API and Celery worker processes, with
the loopback Graph and Groq fakes of the test suite (Groq answers instantly) running in this process."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import common
from bench.payloads import write_pool
from tests.fakes.graph_fake import GraphFake, Recorded
from tests.fakes.groq_fake import GroqFake
from tests.fakes.server import wait_for
from tests.processes import fake_backed_env


class TimedGraphFake(GraphFake):
    """The test suite's Graph fake, also noting when each quoted reply arrived (by the message it quotes)."""

    def __init__(self) -> None:
        super().__init__()
        self.replied_at: dict[str, float] = {}
        self._reply_lock = threading.Lock()

    def _record(self, item: Recorded) -> None:
        body = item.json if isinstance(item.json, dict) else {}
        quoted = (body.get("context") or {}).get("message_id")
        if quoted and body.get("type"):
            with self._reply_lock:
                self.replied_at.setdefault(quoted, time.perf_counter())
        super()._record(item)

    def reset(self) -> None:
        super().reset()
        with self._reply_lock:
            self.replied_at.clear()


@dataclass
class Stack:
    workdir: Path
    redis: common.Redis
    graph: TimedGraphFake
    groq: GroqFake
    env: dict[str, str]
    api: common.Service
    workers: list[common.Service] = field(default_factory=list)

    def start_worker(self, *args: str, name: str = "w") -> common.Service:
        log = self.workdir / f"worker-{name}.log"
        argv = common.py("-m", "loopera.cli", "worker", *args, "--name", f"{name}@bench")
        handle = log.open("ab")
        import subprocess

        process = subprocess.Popen(
            argv, cwd=common.REPO, env=self.env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        service = common.Service(process, "", log, handle)

        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{log.read_text(errors='replace')[-3000:]}")
            return "worker.ready" in log.read_text(errors="replace")

        wait_for(ready, timeout=60, what="a worker to be ready")
        time.sleep(0.5)  # the consumer starts polling right after worker_ready
        self.workers.append(service)
        return service

    def stop_workers(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.workers.clear()


@contextmanager
def stack(workdir: Path, log_level: str = "INFO") -> Iterator[Stack]:
    redis_server = common.Redis(workdir, core="")
    graph, groq = TimedGraphFake(), GroqFake()
    graph.server.start()
    groq.server.start()
    # The throughput benchmarks send many messages per conversation: the per-user limit (a policy, measured in
    # bench/fairness.py) would turn most of them into "please slow down".
    env = fake_backed_env(redis_server.url, graph.url, graph.version, groq.url) | {
        "LOG_LEVEL": log_level,
        "USER_MESSAGES_PER_WINDOW": "0",
    }
    api = common.start_service(common.py("-m", "loopera.cli", "api", "--host", "127.0.0.1"), env, workdir / "api.log")
    built = Stack(workdir, redis_server, graph, groq, env, api)
    try:
        yield built
    finally:
        built.stop_workers()
        api.stop()
        graph.server.stop()
        groq.server.stop()
        redis_server.stop()


def signed_requests(path: Path) -> list[tuple[bytes, bytes]]:
    """(signature, body) pairs of a pool written by `bench.payloads.write_pool`."""
    pairs = []
    for line in path.read_bytes().splitlines():
        signature, body = line.split(b"\t", 1)
        pairs.append((signature, body))
    return pairs


def make_requests(workdir: Path, name: str, bodies: Iterator[bytes]) -> list[tuple[bytes, bytes]]:
    path = workdir / f"{name}.txt"
    write_pool(path, bodies)
    return signed_requests(path)


async def post_all(
    url: str, requests: Sequence[tuple[bytes, bytes]], concurrency: int, interval: float = 0.0
) -> list[tuple[float, float, int]]:
    """POST every signed webhook; returns (sent_at, acked_at, status) per request, perf_counter clock.
    `interval` > 0 sends one at a time with that pause (light load); else `concurrency` at once (saturation)."""
    results: list[tuple[float, float, int]] = [(0.0, 0.0, 0)] * len(requests)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for index in range(len(requests)):
            queue.put_nowait(index)

        async def one(index: int) -> None:
            signature, body = requests[index]
            headers = {"content-type": "application/json", "x-hub-signature-256": signature.decode()}
            sent = time.perf_counter()
            response = await client.post("/webhook", content=body, headers=headers)
            results[index] = (sent, time.perf_counter(), response.status_code)

        async def sender() -> None:
            while not queue.empty():
                await one(queue.get_nowait())
                if interval:
                    await asyncio.sleep(interval)

        await asyncio.gather(*(sender() for _ in range(1 if interval else concurrency)))
    return results


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def message_ids(body: bytes) -> list[str]:
    import orjson

    payload: Any = orjson.loads(body)
    return [m["id"] for e in payload["entry"] for c in e["changes"] for m in c["value"].get("messages", [])]
