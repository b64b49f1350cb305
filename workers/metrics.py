"""Worker metrics: job outcomes and pipeline stage durations per queue, served by the worker's main process.

Choice: a Prometheus *multiprocess directory* plus one small HTTP port per worker process group
(WORKER_METRICS_PORT). Prefork children each record into their own mmap files in PROMETHEUS_MULTIPROC_DIR; the
main process (which runs no jobs) aggregates them on every scrape. One port per container, whatever the
concurrency, and no push gateway. `loopera worker` prepares the directory (loopera/worker_env.py) before anything
imports prometheus_client: the library picks its storage mode at import time.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client import multiprocess as _multiprocess

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

JOBS = Counter(
    "loopera_jobs_total",
    "Worker jobs by queue and outcome",
    ["queue", "outcome"],  # done, retrying, failed, skipped_copy, invalid_payload, merged
)
JOB_SECONDS = Histogram(
    "loopera_job_seconds",
    "Wall time of one job attempt, by queue and outcome",
    ["queue", "outcome"],
    buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300),
)
STAGE_SECONDS = Histogram(
    "loopera_stage_seconds",
    "Wall time of one pipeline stage (claim, pipeline, transcribe, chat, tts, send, ...) by queue",
    ["queue", "stage", "outcome"],
    buckets=(0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120),
)

FEEDBACK = Counter(
    "loopera_feedback_reactions_total",
    "Users' reactions to the bot's messages, by reaction (a few common emoji, else `other`; `removed` for a "
    "reaction taken back)",
    ["reaction"],
)
ACK_REACTIONS = Counter(
    "loopera_ack_reactions_total",
    "Acknowledgement reactions on users' messages while a job works, by what happened (added, removed, failed)",
    ["event"],
)


@contextmanager
def stage(queue: str, name: str) -> Iterator[None]:
    """Time a pipeline stage; `outcome` is ok or the exception's class name (never its message: PII)."""
    started = time.perf_counter()
    outcome = "ok"
    try:
        yield
    except BaseException as exc:
        outcome = type(exc).__name__
        raise
    finally:
        STAGE_SECONDS.labels(queue, name, outcome).observe(time.perf_counter() - started)


def start_metrics_server(port: int) -> int:
    """Serve the aggregate of every process's metrics files; returns the bound port (0 picks a free one)."""
    registry = CollectorRegistry()
    _multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    server, _thread = start_http_server(port, registry=registry)
    return int(server.server_port)


def mark_process_dead(pid: int) -> None:
    """Drop a finished child's live gauges (counters and histograms are kept, as Prometheus expects)."""
    if os.environ.get(MULTIPROC_ENV):
        _multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def touch_heartbeat(path: Path) -> None:
    """Proof of life for `loopera healthcheck worker`: called from the consumer loop on each Celery heartbeat."""
    # A read-only /tmp must not kill the consumer; the health check then reports the missing file instead.
    with contextlib.suppress(OSError):
        path.touch(exist_ok=True)
