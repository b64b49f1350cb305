"""`loopera healthcheck <role>`: the images' HEALTHCHECK. Cheap on purpose: one local HTTP GET or one stat()."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

from shared.config import Settings


def check_http(url: str) -> tuple[bool, str]:
    # urllib, not httpx: this runs every few seconds in every container, and importing httpx costs ~0.25 s of CPU.
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - a fixed http://127.0.0.1 URL
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        return False, f"{url}: {type(exc).__name__}"
    return status == 200, f"{url}: {status}"


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
