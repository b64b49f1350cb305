"""Shared pieces of the benchmarks: machine facts, pinned service processes, wrk runs and result tables."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import redis

from tests.fakes.server import free_port, wait_for
from tests.processes import stop_process_group

REPO = Path(__file__).resolve().parents[1]
WRK_SCRIPT = Path(__file__).with_name("wrk_pool.lua")
# The service under test gets core 0; the load generator (and Redis, which is light next to it) core 1.
SERVER_CORE = "0"
LOAD_CORE = "1"


def pinned(core: str, argv: Sequence[str]) -> list[str]:
    """Prefix with taskset when there is one and the core exists (CI machines may have one core); "" = no pin."""
    if core and shutil.which("taskset") and (os.cpu_count() or 1) > int(core):
        return ["taskset", "-c", core, *argv]
    return list(argv)


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "host": f"{platform.system()} {platform.release()}, {os.cpu_count()} cores, {cpu}",
        "python": platform.python_version(),
        "load": f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1/5/15 min load average at start)",
    }


def print_header(title: str, facts: dict[str, str]) -> None:
    print(f"\n## {title}\n")
    for key, value in facts.items():
        print(f"- {key}: {value}")
    print()


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    print(flush=True)


def ms(microseconds: float) -> str:
    return f"{microseconds / 1000:.2f}"


class Redis:
    """A private, pinned redis-server, without persistence unless `extra` turns it on (a benchmark measures our
    code, not fsync, except where the durability modes are the point); `replica_of` makes it a replica."""

    def __init__(
        self, workdir: Path, core: str = LOAD_CORE, extra: Sequence[str] = (), replica_of: int | None = None
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is needed (apt-get install redis-server)")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        data = workdir / f"redis-{self.port}"
        data.mkdir()
        argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        argv += ["--dir", str(data), "--maxmemory-policy", "noeviction", *extra]
        if replica_of is not None:
            argv += ["--replicaof", "127.0.0.1", str(replica_of)]
        self.process = subprocess.Popen(pinned(core, argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.client = redis.Redis.from_url(self.url)
        wait_for(self._pings, timeout=10, what="redis-server")

    def _pings(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        self.process.wait(timeout=10)


def wait_for_replica(primary: Redis) -> None:
    """Until `primary` has an online replica (its initial sync done)."""

    def online() -> bool:
        info = primary.client.info("replication")
        return any(k.startswith("slave") and v.get("state") == "online" for k, v in info.items())

    wait_for(online, timeout=20, what="the replica to sync")


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    url: str
    log: Path
    handle: IO[bytes] | None = None

    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        stop_process_group(self.process, timeout=20)
        if self.handle is not None:
            self.handle.close()


def start_service(
    argv: list[str], env: dict[str, str], log: Path, health_path: str = "/health", cwd: Path = REPO
) -> Service:
    """Start an HTTP service (argv gets PORT in env) and wait until it answers `health_path`."""
    port = free_port()
    handle = log.open("ab")
    process = subprocess.Popen(
        argv, cwd=cwd, env={**env, "PORT": str(port)}, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )
    service = Service(process, f"http://127.0.0.1:{port}", log, handle)

    def up() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{argv} exited early:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            return httpx.get(service.url + health_path, timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    wait_for(up, timeout=30, what=f"{argv} to answer")
    return service


@contextmanager
def running(service: Service) -> Iterator[Service]:
    try:
        yield service
    finally:
        service.stop()


@dataclass
class WrkResult:
    requests: int
    seconds: float
    non2xx: int
    errors: int
    p50_us: float
    p99_us: float
    max_us: float
    cpu_seconds: float = 0.0  # the server's CPU time during the run, when measured (cpu_seconds_of)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_us_per_request(self) -> float:
        """The server's cost of one request: CPU time over requests. Unlike throughput it hardly moves when other
        processes compete for the cores, so it is the figure to compare on a shared machine."""
        return self.cpu_seconds / self.requests * 1e6 if self.requests else 0.0


def cpu_seconds_of(pid: int) -> float:
    """User + system CPU seconds of a process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, pool: Path, seconds: float, connections: int = 50, path: str = "/webhook") -> WrkResult:
    """wrk on the load core, one thread, replaying the pre-signed requests in `pool` (one `sig<TAB>body` a line)."""
    binary = shutil.which("wrk")
    if binary is None:
        raise SystemExit("wrk is needed (apt-get install wrk)")
    argv = [binary, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "5s", "-s", str(WRK_SCRIPT)]
    argv.append(url + path)
    out = subprocess.run(
        pinned(LOAD_CORE, argv), env={**os.environ, "BENCH_POOL": str(pool)}, capture_output=True, text=True, check=True
    ).stdout
    line = next((x for x in out.splitlines() if x.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        non2xx=data["non2xx"],
        errors=data["connect"] + data["read"] + data["write"] + data["timeout"],
        p50_us=data["p50"],
        p99_us=data["p99"],
        max_us=data["max"],
    )


def python_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPERA_", "GRAPH_", "GROQ_"))}
    env.update({"PYTHONUNBUFFERED": "1", **extra})
    return env


def py(*args: str) -> list[str]:
    return [sys.executable, *args]


def settle(seconds: float = 0.5) -> None:
    """A pause between runs so the previous one's sockets drain (TIME_WAIT does not matter: keep-alive)."""
    time.sleep(seconds)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def process_tree(pid: int) -> list[int]:
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(_children(current))
    return tree


def memory_mb(pid: int) -> tuple[float, float, int]:
    """(RSS, PSS) in MiB summed over the process and its children, and the process count. PSS splits pages that
    prefork children share with their parent, so it is the honest total; RSS counts shared pages in every child."""
    rss = pss = 0
    pids = process_tree(pid)
    for member in pids:
        try:
            for line in Path(f"/proc/{member}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            continue
    return rss / 1024, pss / 1024, len(pids)
