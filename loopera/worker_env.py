"""Process environment a worker needs before its libraries are imported."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_dir() -> Path:
    """Point prometheus_client at a multiprocess directory before it is imported (it picks its storage mode at
    import time), so prefork children's metrics reach the main process's /metrics. A configured directory is
    wiped first: a restarted container would otherwise count the previous run's totals again."""
    configured = os.environ.get(MULTIPROC_ENV)
    path = Path(configured) if configured else Path(tempfile.mkdtemp(prefix="loopera-metrics-"))
    if configured and path.exists():
        shutil.rmtree(path)
    if not configured:
        owner = os.getpid()
        # Remove our own temp dir at exit; forked pool children inherit atexit handlers, hence the pid check.
        atexit.register(_remove_if_owner, path, owner)
    path.mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(path)
    return path


def _remove_if_owner(path: Path, owner: int) -> None:
    if os.getpid() == owner:
        shutil.rmtree(path, ignore_errors=True)
