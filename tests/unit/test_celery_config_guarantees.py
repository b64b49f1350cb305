"""The Celery settings that the delivery guarantees depend on come from configuration, and unsafe ones fail fast."""

from __future__ import annotations

from typing import Any

import pytest

from shared.config import Settings
from workers.runtime.celery_app import celery_config


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_visibility_timeout_and_time_limits_come_from_settings() -> None:
    config = celery_config(settings(celery_visibility_timeout=30, task_time_limit=25, task_soft_time_limit=20))
    assert config["broker_transport_options"]["visibility_timeout"] == 30
    assert (config["task_time_limit"], config["task_soft_time_limit"]) == (25, 20)
    # Crash safety: ack after the task, requeue when the pool process dies, one message per process.
    assert config["task_acks_late"] and config["task_reject_on_worker_lost"]
    assert config["worker_prefetch_multiplier"] == 1
    # Reconnects: retry forever, with socket timeouts and health checks, via the patched transport.
    assert config["broker_connection_max_retries"] is None
    assert config["broker_transport_options"]["health_check_interval"] > 0
    assert config["broker_transport"] == "workers.runtime.broker:Transport"


def test_a_visibility_timeout_not_above_the_hard_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="CELERY_VISIBILITY_TIMEOUT"):
        celery_config(settings(celery_visibility_timeout=300, task_time_limit=300))


def test_a_soft_time_limit_above_the_hard_limit_is_refused() -> None:
    """Celery would ignore both limits and refuse every retry ("soft_time_limit must be less than or equal to
    time_limit"), ending jobs without an answer."""
    with pytest.raises(ValueError, match="TASK_SOFT_TIME_LIMIT"):
        celery_config(settings(celery_visibility_timeout=60, task_time_limit=3, task_soft_time_limit=30))
