"""`make run` (`python -m loopera.dev_stack`) as a user runs it: in a directory with a `.env` made from
`.env.example`, as a process of its own that the test stops with Ctrl-C (SIGINT)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.fakes.server import free_port, wait_for
from tests.processes import REPO, child_pids


class DevStack:
    def __init__(self, workdir: Path, settings: dict[str, str], startup_timeout: float = 90) -> None:
        """`settings` are filled into the copy of .env.example (as a user would edit it)."""
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port, self.sandbox_port, self.redis_port = free_port(), free_port(), free_port()
        self.settings = {
            "PORT": str(self.port),
            "SANDBOX_PORT": str(self.sandbox_port),
            # Nothing answers here: `make run` starts its own redis-server.
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            **settings,
        }
        self.startup_timeout = startup_timeout
        self.log_path = workdir / "make-run.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.api_url = f"http://127.0.0.1:{self.port}"
        self.sandbox_url = f"http://127.0.0.1:{self.sandbox_port}"

    def write_env(self) -> None:
        lines = []
        for line in (REPO / ".env.example").read_text().splitlines():
            name = line.split("=", 1)[0]
            filled = not line.startswith("#") and name in self.settings
            lines.append(f"{name}={self.settings[name]}" if filled else line)
        given = {line.split("=", 1)[0] for line in lines if not line.startswith("#")}
        lines += [f"{k}={v}" for k, v in self.settings.items() if k not in given]
        (self.workdir / ".env").write_text("\n".join(lines) + "\n")

    def start(self) -> DevStack:
        self.write_env()
        # Only what a shell has: every setting comes from .env, as for a user.
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR", "UV_LINK_MODE")}
        env["LOOPERA_STARTUP_TIMEOUT"] = str(self.startup_timeout)
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "loopera.dev_stack"],
            cwd=self.workdir,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, like a terminal's foreground job
        )
        return self

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 120) -> None:
        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"make run exited early ({self.process.returncode}):\n{self.output()[-4000:]}")
            return "make run: API on" in self.output()

        wait_for(ready, timeout=timeout, interval=0.2, what="make run to print its URLs")

    def wait_exit(self, timeout: float = 60) -> int:
        assert self.process is not None
        try:
            return self.process.wait(timeout=timeout)
        finally:
            self._log.close()

    def ctrl_c(self) -> None:
        """What the terminal does on Ctrl-C: SIGINT to the foreground process group."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGINT)

    def children(self) -> dict[str, int]:
        """pid of each direct child (`api`, `text`, `audio`, `vision`, `sandbox`, `redis`) from /proc."""
        assert self.process is not None
        found: dict[str, int] = {}
        for pid in child_pids(self.process.pid):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            args = [a.decode() for a in cmdline if a]
            if not args:  # exited since it was listed
                continue
            if "redis-server" in args[0]:
                found["redis"] = pid
            elif "--pool" in args:
                found[args[args.index("--pool") + 1]] = pid
            elif args[-1] in ("api", "sandbox") or "api" in args:
                found["sandbox" if args[-1] == "sandbox" else "api"] = pid
        return found

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.ctrl_c()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        if self.process is not None and not self._log.closed:
            self._log.close()

    def answers(self, path: str, base: str | None = None) -> bool:
        try:
            return httpx.get(f"{base or self.sandbox_url}{path}", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


@contextmanager
def chatting_stack(workdir: Path, groq_url: str, groq_key: str) -> Iterator[DevStack]:
    """`make run`'s whole stack (Redis, API, the pools, the sandbox) with a loopback Groq behind the workers, ready
    to chat; stopped on the way out."""
    settings = {"GROQ_API_KEY": groq_key, "GROQ_BASE_URL": groq_url, "RATE_LIMITS_ENABLED": "false"}
    running = DevStack(workdir, settings).start()
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()
