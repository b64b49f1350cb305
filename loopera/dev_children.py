"""The processes `make run` starts: each relays its output with its name in front, remembers its last line (the
reason it gives when it exits) and says whether it answers its health check."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

STOP_TIMEOUT_SECONDS = 30


@dataclass
class Child:
    name: str
    command: list[str]
    healthy: Callable[[], bool]
    process: subprocess.Popen[bytes] | None = None
    last_line: str = ""
    reader: threading.Thread | None = field(default=None, repr=False)

    def start(self, env: dict[str, str]) -> None:
        # A session of its own: the terminal's Ctrl-C reaches only us, and we stop the children in order.
        self.process = subprocess.Popen(
            self.command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.reader = threading.Thread(target=self._relay, name=f"relay-{self.name}", daemon=True)
        self.reader.start()

    def _relay(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.decode(errors="replace").rstrip()
            if line:
                self.last_line = line
                print(f"{self.name:>7} | {line}", flush=True)

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def reason(self) -> str:
        if self.reader is not None:
            self.reader.join(timeout=2)  # the last words are still in the pipe
        return self.last_line[:400] or "(no output)"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)

    def wait(self) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


def redis_answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    return check


def fresh_file(path: Path, max_age: float = 30) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return time.time() - path.stat().st_mtime < max_age
        except OSError:
            return False

    return check
