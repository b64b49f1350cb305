"""`loopera healthcheck <role>`: the images' HEALTHCHECK. Cheap on purpose: one local HTTP GET or one stat()."""

from __future__ import annotations

import time

import httpx

from shared.config import Settings


def check_http(url: str) -> tuple[bool, str]:
    try:
        response = httpx.get(url, timeout=3)
    except httpx.HTTPError as exc:
        return False, f"{url}: {type(exc).__name__}"
    return response.status_code == 200, f"{url}: {response.status_code}"


def check_api(settings: Settings) -> tuple[bool, str]:
    # /health is liveness only (no Redis I/O): a Redis outage must not get every API container restarted.
    return check_http(f"http://127.0.0.1:{settings.port}/health")


def check_flower(settings: Settings) -> tuple[bool, str]:
    return check_http(f"http://127.0.0.1:{settings.port}/healthcheck")  # exempt from Flower's auth


def check_worker(settings: Settings) -> tuple[bool, str]:
    """The consumer loop touches the heartbeat file on each Celery heartbeat (every 2 s). Stale means the loop is
    wedged or lost the broker; busy is fine (prefork jobs run in children, the loop keeps beating)."""
    path = settings.worker_heartbeat_file
    try:
        age = time.time() - path.stat().st_mtime
    except OSError:
        return False, f"no heartbeat file at {path} (worker not ready yet?)"
    healthy = age <= settings.worker_heartbeat_max_age_seconds
    return healthy, f"last heartbeat {age:.0f}s ago (max {settings.worker_heartbeat_max_age_seconds}s)"
