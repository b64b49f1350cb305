"""Run a child process on untrusted media within a work budget: CPU seconds, address space, output bytes, wall time.

Every decoder that touches a user's media (ffmpeg for audio, Pillow for images) runs here, in its own process, so
whatever the bytes make it do, the worker process neither grows nor stalls: Celery's `threads` pool cannot stop a
thread stuck in a decoder, and a decoder's allocation lands in the worker's own memory.

The kernel enforces the limits (getrlimit(2)): RLIMIT_CPU sends SIGXCPU, then SIGKILL one second later;
RLIMIT_AS makes allocations fail; RLIMIT_FSIZE 0 forbids writing files; RLIMIT_CORE 0 drops core dumps. They are
set with prlimit(2) on the child right after it starts, not in `preexec_fn`, which is unsafe when the parent has
threads (https://docs.python.org/3/library/subprocess.html#subprocess.Popen). The child has already exec'd its
program by then and waits for its input, which is written only once the limits are in place. The output is read
as it comes and the child killed once it passes `max_output_bytes`; the wall-clock timeout covers a child that
sleeps or blocks instead of computing.
"""

from __future__ import annotations

import os
import resource
import selectors
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

_CHUNK = 64 * 1024
_SAMPLE_SECONDS = 0.02
_STDERR_KEPT = 4096


@dataclass(frozen=True, slots=True)
class WorkBudget:
    cpu_seconds: int
    memory_bytes: int
    max_output_bytes: int
    timeout_seconds: float


@dataclass(frozen=True, slots=True)
class Finished:
    """A child that exited 0: its stdout and what it cost: CPU seconds from wait4(2), peak resident memory as
    sampled from /proc/<pid>/status `VmHWM` while it ran (wait4's `ru_maxrss` would count the worker's own
    resident size: the child starts as a copy of it)."""

    output: bytes
    cpu_seconds: float
    peak_memory_bytes: int


class BudgetError(RuntimeError):
    """The child did not finish within its budget or failed. `reason`: `timeout`, `cpu_limit`, `memory_limit`,
    `output_limit`, `failed` (non-zero exit; `detail` holds the end of its stderr) or `missing` (cannot start)."""

    def __init__(self, reason: str, detail: str = "", cpu_seconds: float = 0.0, peak_memory_bytes: int = 0) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.cpu_seconds = cpu_seconds
        self.peak_memory_bytes = peak_memory_bytes


def _limit(pid: int, budget: WorkBudget) -> None:
    cpu = max(1, budget.cpu_seconds)
    try:
        resource.prlimit(pid, resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.prlimit(pid, resource.RLIMIT_AS, (budget.memory_bytes, budget.memory_bytes))
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (0, 0))
        resource.prlimit(pid, resource.RLIMIT_CORE, (0, 0))
    except ProcessLookupError:
        pass  # it already exited (e.g. a bad argument): its exit status says why, and it cannot do any more work


def run_bounded(
    args: Sequence[str],
    data: bytes,
    budget: WorkBudget,
    env: Mapping[str, str] | None = None,
    pass_fds: Sequence[int] = (),
) -> Finished:
    """Run `args` with `data` on stdin and return its stdout. Raises BudgetError."""
    try:
        process = subprocess.Popen(
            list(args),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            pass_fds=tuple(pass_fds),
        )
    except OSError as exc:
        raise BudgetError("missing", str(exc)) from exc
    exchange = _Exchange(process, budget)
    try:
        _limit(process.pid, budget)
        reason = exchange.run(data)
    except BaseException:
        process.kill()
        _reap(process)
        raise
    if reason:
        process.kill()
    status, usage = _reap(process)
    cpu = usage.ru_utime + usage.ru_stime
    detail = exchange.errors.decode(errors="replace").strip()[-300:]
    if not reason and status != 0:
        reason = _failure_reason(status, detail)
    if reason:
        raise BudgetError(reason, detail, cpu, exchange.peak_memory)
    return Finished(bytes(exchange.output), cpu, exchange.peak_memory)


def _failure_reason(status: int, detail: str) -> str:
    if status in (-signal.SIGXCPU, -signal.SIGKILL):
        return "cpu_limit"  # nothing else here sends those: the kernel does, at the soft and the hard CPU limit
    lowered = detail.lower()
    if "memoryerror" in lowered or "cannot allocate memory" in lowered or "out of memory" in lowered:
        return "memory_limit"
    return "failed"


class _Exchange:
    """Writes the child's stdin and reads its stdout and stderr until both close, sampling its peak memory."""

    def __init__(self, process: subprocess.Popen[bytes], budget: WorkBudget) -> None:
        self._process = process
        self._budget = budget
        self._status = Path(f"/proc/{process.pid}/status")
        self.output = bytearray()
        self.errors = bytearray()
        self.peak_memory = 0

    def run(self, data: bytes) -> str:
        """ "" when the child closed its output, else why it must be stopped: `timeout` or `output_limit`."""
        process = self._process
        assert process.stdin is not None and process.stdout is not None and process.stderr is not None
        deadline = time.monotonic() + self._budget.timeout_seconds
        feed = _Feed(process.stdin, data)
        with selectors.DefaultSelector() as selector:
            if feed.open:
                selector.register(process.stdin, selectors.EVENT_WRITE)
            selector.register(process.stdout, selectors.EVENT_READ)
            selector.register(process.stderr, selectors.EVENT_READ)
            while selector.get_map():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return "timeout"
                events = selector.select(min(remaining, _SAMPLE_SECONDS))
                self._sample()
                for key, _ in events:
                    if key.fileobj is process.stdin:
                        if not feed.write():
                            selector.unregister(process.stdin)
                            process.stdin.close()
                    elif not self._read(key.fd, key.fileobj is process.stdout):
                        selector.unregister(key.fileobj)
                if len(self.output) > self._budget.max_output_bytes:
                    return "output_limit"
        return ""

    def _read(self, fd: int, is_stdout: bool) -> bool:
        chunk = os.read(fd, _CHUNK)
        if is_stdout:
            self.output += chunk
        else:
            self.errors = (self.errors + chunk)[-_STDERR_KEPT:]
        return bool(chunk)

    def _sample(self) -> None:
        try:
            status = self._status.read_text()
        except OSError:
            return  # exited and reaped meanwhile
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                self.peak_memory = max(self.peak_memory, int(line.split()[1]) * 1024)
                return


class _Feed:
    """The child's stdin, written in chunks without blocking."""

    def __init__(self, stdin: IO[bytes], data: bytes) -> None:
        self._stdin = stdin
        self._view = memoryview(data)
        self._written = 0
        if data:
            os.set_blocking(stdin.fileno(), False)
        else:
            stdin.close()

    @property
    def open(self) -> bool:
        return not self._stdin.closed

    def write(self) -> bool:
        """Write what the pipe takes; False once done (all written, or the child closed its end): the caller
        then closes stdin, so the child sees the end of its input."""
        try:
            self._written += os.write(self._stdin.fileno(), self._view[self._written : self._written + _CHUNK])
        except BlockingIOError:
            return True
        except BrokenPipeError:
            self._written = len(self._view)  # the child stopped reading: its exit status tells why
        return self._written < len(self._view)


def _reap(process: subprocess.Popen[bytes]) -> tuple[int, resource.struct_rusage]:
    """Wait for the child and collect its resource usage (Popen.wait would discard it)."""
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None and not stream.closed:
            stream.close()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage
