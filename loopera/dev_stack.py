"""`make run`: the whole service on one machine, telling the truth about it.

Starts redis-server if nothing answers at REDIS_URL, then the API, one worker per pool and, unless every Meta
setting is filled in, the sandbox (a local stand-in for Meta, docs/sandbox.md) with locally generated secrets. It
prints the URLs only once every component answers its health check, exits non-zero with the child's last line when
any child exits or fails to start, and stops everything on Ctrl-C (or SIGTERM).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from loopera.dev_children import Child, fresh_file, http_ok, redis_answers
from shared.config import (
    META_SETTINGS,
    SANDBOX_TOKEN_PREFIX,
    ConfigError,
    Settings,
    is_placeholder,
    is_sandbox_token,
)

STARTUP_TIMEOUT_SECONDS = float(os.environ.get("LOOPERA_STARTUP_TIMEOUT", "120"))
POOLS = (("text", "threads", "4"), ("audio", "prefork", "2"), ("vision", "threads", "4"))


def runs_against_meta(settings: Settings) -> bool:
    return not settings.sandbox and not settings.missing_secrets(META_SETTINGS)


def sandbox_env(settings: Settings) -> dict[str, str]:
    """The settings every process shares in sandbox mode: generated secrets, and Graph = the local stand-in."""
    token = settings.whatsapp_token
    if not is_placeholder(token) and not is_sandbox_token(token):
        raise ConfigError(
            "WHATSAPP_TOKEN is set but other Meta settings are missing ("
            + ", ".join(settings.missing_secrets(META_SETTINGS))
            + "): fill them all in to run against Meta, or empty WHATSAPP_TOKEN to use the sandbox (it never "
            "receives a real token)."
        )
    return {
        "SANDBOX": "true",
        "APP_SECRET": secrets.token_hex(16),
        "VERIFY_TOKEN": secrets.token_hex(16),
        "WHATSAPP_TOKEN": SANDBOX_TOKEN_PREFIX + secrets.token_hex(16),
        "PHONE_NUMBER_ID": str(100_000_000_000_000 + secrets.randbelow(899_999_999_999_999)),
        "GRAPH_API_URL": f"http://127.0.0.1:{settings.sandbox_port}",
    }


def plan(settings: Settings, scratch: Path) -> tuple[list[Child], dict[str, str]]:
    """The children to start (after Redis) and the environment overrides they share."""
    sandbox = not runs_against_meta(settings)
    overrides = sandbox_env(settings) if sandbox else {}
    me = [sys.executable, "-m", "loopera.cli"]
    children = [Child("api", [*me, "api", "--host", "127.0.0.1"], http_ok(f"http://127.0.0.1:{settings.port}/health"))]
    for pool, impl, concurrency in POOLS:
        beat = scratch / f"{pool}.heartbeat"
        command = [*me, "worker", "--pool", pool, "--pool-impl", impl, "--concurrency", concurrency]
        # Each pool's own heartbeat file: the env var is per process, set when it starts (see main).
        children.append(Child(pool, command, fresh_file(beat)))
    if sandbox:
        children.append(
            Child("sandbox", [*me, "sandbox"], http_ok(f"http://127.0.0.1:{settings.sandbox_port}/api/health"))
        )
    return children, overrides


def _start_redis(settings: Settings, scratch: Path) -> Child | None:
    where = urlsplit(settings.redis_url)
    if redis_answers(settings.redis_url):
        # Its data is shared with whatever else uses it (memory, queues): say so, without the URL's password.
        print(
            f"make run: using the Redis already answering at {where.hostname}:{where.port or 6379} (REDIS_URL); "
            "set REDIS_URL to another port to have make run start its own",
            flush=True,
        )
        return None
    binary = shutil.which("redis-server")
    if binary is None:
        raise ConfigError(
            "No Redis answers at REDIS_URL and there is no redis-server: install Redis (apt-get install redis-server)"
        )
    port = where.port or 6379
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(scratch), "--appendonly", "yes"]
    return Child("redis", [*command, "--maxmemory-policy", "noeviction"], lambda: redis_answers(settings.redis_url))


def _port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def check_ports(settings: Settings, sandbox: bool) -> None:
    """A port someone else holds would make a child fail (or, worse, answer its health check with a stranger)."""
    ports = [("PORT", settings.port)] + ([("SANDBOX_PORT", settings.sandbox_port)] if sandbox else [])
    for name, port in ports:
        if _port_in_use(port):
            raise ConfigError(f"port {port} ({name}) is already in use: stop what listens there or set {name} in .env")


class Stop(Exception):
    """Ctrl-C (SIGINT) or SIGTERM."""


def _on_stop_signal(signum: int, frame: object) -> None:
    raise Stop


def main() -> int:
    try:
        settings = Settings()
    except ValueError as exc:  # pydantic's ValidationError: a malformed setting
        print(f"make run: configuration error: {exc}", file=sys.stderr)
        return 2
    scratch = Path(tempfile.mkdtemp(prefix="loopera-run-"))
    # Both installed explicitly: a shell script that starts `make run` in the background leaves SIGINT ignored,
    # and Python would then keep ignoring Ctrl-C.
    signal.signal(signal.SIGTERM, _on_stop_signal)
    signal.signal(signal.SIGINT, _on_stop_signal)
    started: list[Child] = []
    try:
        check_ports(settings, sandbox=not runs_against_meta(settings))
        redis_child = _start_redis(settings, scratch)
        children, overrides = plan(settings, scratch)
        return _run(settings, [c for c in (redis_child,) if c] + children, overrides, scratch, started)
    except ConfigError as exc:
        print(f"make run: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Stop):
        print("make run: stopping", flush=True)
        return 0
    finally:
        # A second Ctrl-C (or make's own signal) must not interrupt the shutdown and strand children.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # Redis last: workers that lose their broker while stopping log connection errors and retry.
        services = [c for c in started if c.name != "redis"]
        for group in (services, [c for c in started if c.name == "redis"]):
            for child in reversed(group):
                child.stop()
            for child in group:
                child.wait()
        shutil.rmtree(scratch, ignore_errors=True)


def _run(
    settings: Settings, children: list[Child], overrides: dict[str, str], scratch: Path, started: list[Child]
) -> int:
    base = {**os.environ, **overrides, "PYTHONUNBUFFERED": "1"}
    mode = "the sandbox (no Meta app needed)" if overrides else "Meta (all Meta settings are set)"
    print(f"make run: starting {', '.join(c.name for c in children)} against {mode}", flush=True)
    for child in children:
        env = {**base, "WORKER_HEARTBEAT_FILE": str(scratch / f"{child.name}.heartbeat")}
        child.start(env)
        started.append(child)
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    waiting = list(children)
    while waiting:
        if (failed := _first_exited(children)) is not None:
            return failed
        waiting = [c for c in waiting if not c.healthy()]
        if waiting and time.monotonic() > deadline:
            for child in waiting:
                seconds = f"{STARTUP_TIMEOUT_SECONDS:g} s"
                print(
                    f"make run: {child.name} did not answer its health check within {seconds}: {child.reason()}",
                    file=sys.stderr,
                )
            return 1
        time.sleep(0.3)
    print("", flush=True)
    if overrides:
        print(f"make run: ready. Chat with the bot: http://127.0.0.1:{settings.sandbox_port}/", flush=True)
    print(f"make run: API on http://127.0.0.1:{settings.port} (Ctrl-C stops everything)", flush=True)
    while True:
        if (failed := _first_exited(children)) is not None:
            return failed
        time.sleep(0.5)


def _first_exited(children: list[Child]) -> int | None:
    for child in children:
        code = child.exited()
        if code is not None:
            print(f"make run: {child.name} exited with code {code}: {child.reason()}", file=sys.stderr, flush=True)
            return code or 1
    return None


if __name__ == "__main__":
    raise SystemExit(main())
