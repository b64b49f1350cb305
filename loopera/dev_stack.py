"""`make run`: the whole service on one machine. Starts redis-server if nothing answers at REDIS_URL, then the API
and one worker per pool, and stops them all on Ctrl-C."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from urllib.parse import urlsplit

import redis

from shared.config import get_settings


def _redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def main() -> int:
    settings = get_settings()
    children: list[subprocess.Popen[bytes]] = []
    if not _redis_answers(settings.redis_url):
        binary = shutil.which("redis-server")
        if binary is None:
            print("No Redis at REDIS_URL and no redis-server binary: install Redis (apt-get install redis-server).")
            return 1
        port = urlsplit(settings.redis_url).port or 6379
        print(f"starting redis-server on port {port}")
        children.append(
            subprocess.Popen([binary, "--port", str(port), "--appendonly", "yes", "--maxmemory-policy", "noeviction"])
        )
        deadline = time.monotonic() + 10
        while not _redis_answers(settings.redis_url) and time.monotonic() < deadline:
            time.sleep(0.1)
    me = [sys.executable, "-m", "loopera.cli"]
    children.append(subprocess.Popen([*me, "api"]))
    for pool in ("text", "audio", "vision"):
        children.append(subprocess.Popen([*me, "worker", "--pool", pool, "--concurrency", "2"]))
    print(f"API on http://127.0.0.1:{settings.port}  (Ctrl-C stops everything)")
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
