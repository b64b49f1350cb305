"""Process environment a worker needs before its libraries are imported."""

from __future__ import annotations

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
    path.mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(path)
    return path
