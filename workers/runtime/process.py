"""The worker process's one `WorkerContext`: built on first use (prefork children build their own after the fork),
closed at process shutdown."""

from __future__ import annotations

import threading

from shared.config import get_settings
from workers.context import WorkerContext

_lock = threading.Lock()
_context: WorkerContext | None = None


def get_context() -> WorkerContext:
    """The process's context, built on first use (prefork children build their own after the fork)."""
    global _context  # noqa: PLW0603 - one context per process is the point
    with _lock:
        if _context is None:
            _context = WorkerContext.build(get_settings())
        return _context


def close_context() -> None:
    global _context  # noqa: PLW0603
    with _lock:
        if _context is not None:
            _context.close()
            _context = None
