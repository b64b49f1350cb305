"""Suite-wide hygiene: no test leaves global logging configuration behind for the next one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def _structlog_config_is_restored() -> Iterator[None]:
    # Code under test (an app factory, a benchmark run in-process) may configure structlog to write to the stderr
    # pytest is capturing for that test; the stream is closed afterwards, and the next test's log line would fail
    # with "I/O operation on closed file" far from its cause.
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)
