"""Real service processes for integration tests: redis-server, the uvicorn API and Celery workers."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import redis

from tests.fakes.server import free_port, wait_for

REPO = Path(__file__).resolve().parents[1]


class RedisServer:
    """A private redis-server on a free port (so tests can stop and restart it), or REDIS_URL's server."""

    def __init__(self, workdir: Path, durable: bool = False) -> None:
        self.binary = shutil.which("redis-server")
        self.workdir = workdir
        # durable: AOF with fsync on every write, as production must run it, so a stop/start keeps the data.
        self.durable = durable
        self.process: subprocess.Popen[bytes] | None = None
        if self.binary:
            self.port = free_port()
            self.url = f"redis://127.0.0.1:{self.port}/0"
        else:
            self.port = 0
            self.url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")

    @property
    def controllable(self) -> bool:
        return self.binary is not None

    def start(self) -> None:
        if not self.binary:
            return
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes" if self.durable else "no",
                "--appendfsync",
                "always",
                "--dir",
                str(self.workdir),
                "--maxmemory-policy",
                "noeviction",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        try:
            wait_for(lambda: _pings(client), timeout=10, what="redis-server to start")
        finally:
            client.close()  # an unclosed socket is a ResourceWarning, and warnings are errors in this suite

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def fake_backed_env(redis_url: str, graph_url: str, graph_version: str, groq_url: str) -> dict[str, str]:
    """Environment for service processes that talk to real Redis and the loopback Groq/Graph fakes."""
    from tests.fakes.graph_fake import PHONE_NUMBER_ID, TOKEN
    from tests.fakes.groq_fake import API_KEY
    from tests.webhooks import APP_SECRET, VERIFY_TOKEN

    base = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPERA_", "GRAPH_", "GROQ_"))}
    return base | {
        "REDIS_URL": redis_url,
        "GRAPH_API_URL": graph_url,
        "GRAPH_API_VERSION": graph_version,
        "GROQ_BASE_URL": groq_url,
        "GROQ_API_KEY": API_KEY,
        "WHATSAPP_TOKEN": TOKEN,
        "APP_SECRET": APP_SECRET,
        "VERIFY_TOKEN": VERIFY_TOKEN,
        "PHONE_NUMBER_ID": PHONE_NUMBER_ID,
        # The Graph fake is the sandbox's stand-in on a loopback http port: the one setting that lets the token go
        # there without https.
        "SANDBOX": "true",
        "GROQ_TIMEOUT_SECONDS": "10",
        "GRAPH_TIMEOUT_SECONDS": "5",
        "TASK_DEADLINE_SECONDS": "60",
        # Burst merging off: most tests send messages in quick succession and expect one answer each;
        # tests/integration/test_bursts.py turns it on in its own environment.
        "COALESCE_WINDOW_SECONDS": "0",
        # Feature tests count what is sent; the acknowledgement reaction of slow jobs has its own tests
        # (tests/integration/test_edits_and_reactions.py).
        "ACK_REACTION_AFTER_SECONDS": "0",
        "LOG_LEVEL": "DEBUG",
        "PYTHONUNBUFFERED": "1",
    }


def child_pids(pid: int) -> list[int]:
    """The live (not zombie) processes whose parent is `pid`, from every /proc/<n>/stat (the field after the
    state is the ppid).

    Not /proc/<pid>/task/<tid>/children: a thread can end between listing the tasks and reading its file
    (seen in CI as FileNotFoundError). A process gone between listing /proc and reading it is skipped for the
    same reason.
    """
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, ppid = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except (OSError, ValueError):
            continue
        if int(ppid) == pid and state != "Z":
            found.append(int(stat.parent.name))
    return sorted(found)


def stop_process_group(process: subprocess.Popen[bytes], timeout: float = 20) -> int:
    """Warm stop: SIGTERM to the process group (started with start_new_session), SIGKILL if it does not exit."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
    return process.returncode


class ServiceProcess:
    """`loopera <args>` as a subprocess with its output in a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.args = args
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "loopera.cli", *self.args],
            cwd=REPO,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_output(self, marker: str, timeout: float = 30) -> None:
        def seen() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"{self.args} exited early:\n{self.output()[-3000:]}")
            return marker in self.output()

        wait_for(seen, timeout=timeout, what=f"{marker!r} from {self.args}")

    def signal_group(self, sig: signal.Signals) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)

    def stop(self, timeout: float = 20) -> None:
        if self.process is None:
            return
        stop_process_group(self.process, timeout)  # a no-op if it already exited (killed by the test)
        self._log.close()


def start_api(env: dict[str, str], log_path: Path) -> tuple[ServiceProcess, str]:
    port = free_port()
    process = ServiceProcess(["api"], {**env, "PORT": str(port)}, log_path).start()
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert process.process is not None
        if process.process.poll() is not None:
            raise AssertionError(f"API exited early:\n{process.output()[-3000:]}")
        try:
            return httpx.get(f"{url}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(healthy, timeout=30, what="the API to answer /health")
    return process, url


def start_worker(env: dict[str, str], log_path: Path, *args: str) -> ServiceProcess:
    process = ServiceProcess(["worker", *args], env, log_path).start()
    process.wait_for_output("worker.ready", timeout=60)
    time.sleep(0.3)  # the consumer starts polling right after worker_ready
    return process
