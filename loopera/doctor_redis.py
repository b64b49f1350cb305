"""`loopera doctor`'s Redis checks: reachable (directly or through Sentinel), no eviction, and whether the running
Redis can lose a message the webhook already acknowledged.

What can lose an acknowledged message (https://redis.io/docs/latest/operate/oss_and_stack/management/persistence/
and .../replication/): without AOF, a restart loses everything since the last snapshot; with
`appendfsync everysec`, a crash of the host loses up to one second of writes; with WAIT for N replicas, only a
failure of the primary and all N replicas together does. A primary without persistence that restarts quickly can
also wipe its replicas (they resynchronise from its empty data set).
"""

from __future__ import annotations

from typing import Any

import redis

from loopera.checks import Result, Status
from shared.config import Settings
from shared.redis_client import data_node_options, sentinel_options

_TIMEOUT = 3.0
_DEPLOY_DOC = "docs/deployment.md"


def check_redis(settings: Settings) -> list[Result]:
    results: list[Result] = []
    if settings.sentinel_addresses:
        found = _ask_sentinels(settings)
        results.append(found[0])
        if found[1] is None:
            return results
        host, port = found[1]
        client = redis.Redis(
            host,
            port,
            socket_timeout=_TIMEOUT,
            socket_connect_timeout=_TIMEOUT,
            **data_node_options(settings.redis_url),
        )
    else:
        client = redis.Redis.from_url(settings.redis_url, socket_timeout=_TIMEOUT, socket_connect_timeout=_TIMEOUT)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        results.append(
            Result(
                "redis",
                Status.FAIL,
                f"not reachable at REDIS_URL: {type(exc).__name__}",
                "Check REDIS_URL (scheme, host, port, password; rediss:// for TLS).",
            )
        )
        return results
    try:
        return results + _policy_and_durability(client, settings)
    finally:
        client.close()


def _ask_sentinels(settings: Settings) -> tuple[Result, tuple[str, int] | None]:
    """Every Sentinel's answer to `SENTINEL GET-MASTER-ADDR-BY-NAME`; the primary they agree on, if any."""
    name, answers, silent = settings.redis_sentinel_master, set(), []
    for host, port in settings.sentinel_addresses:
        client = redis.Redis(host, port, **(sentinel_options(settings) | {"socket_timeout": _TIMEOUT}))
        try:
            address = client.sentinel_get_master_addr_by_name(name)
        except redis.RedisError:
            silent.append(f"{host}:{port}")
            continue
        finally:
            client.close()
        if isinstance(address, tuple | list):
            answers.add((_text(address[0]), int(address[1])))
    total = len(settings.sentinel_addresses)
    if not answers:
        detail = "no Sentinel answered" if len(silent) == total else f"no Sentinel monitors a primary named {name!r}"
        fix = "Check REDIS_SENTINELS, REDIS_SENTINEL_PASSWORD and REDIS_SENTINEL_MASTER (`sentinel monitor <name>`)."
        return Result("redis.sentinel", Status.FAIL, detail, fix), None
    primary = sorted(answers)[0]
    if len(answers) > 1 or silent:
        detail = f"Sentinels disagree or are silent: {sorted(answers)}; not answering: {', '.join(silent) or '-'}"
        fix = "Every Sentinel must be reachable and monitor the same primary (a failover may be under way)."
        return Result("redis.sentinel", Status.WARN, detail, fix), primary
    detail = f"{total}/{total} Sentinels name {primary[0]}:{primary[1]} as the primary of {name!r}"
    return Result("redis.sentinel", Status.PASS, detail), primary


def _policy_and_durability(client: redis.Redis, settings: Settings) -> list[Result]:
    try:
        policy = str(_config_value(client, "maxmemory-policy"))
        aof = str(_config_value(client, "appendonly"))
        fsync = str(_config_value(client, "appendfsync"))
    except redis.RedisError:
        return [Result("redis", Status.WARN, "reachable; CONFIG GET is disabled, eviction policy unknown")]
    replication: dict[str, Any] = client.info("replication")
    online = sum(
        1
        for key, value in replication.items()
        if key.startswith("slave") and isinstance(value, dict) and value.get("state") == "online"
    )
    eviction = Result(
        "redis.eviction",
        Status.PASS if policy == "noeviction" else Status.FAIL,
        f"maxmemory-policy {policy}",
        "" if policy == "noeviction" else "Set maxmemory-policy noeviction: an evicted queue key loses jobs.",
    )
    return [eviction, durability(settings.ack_replicas, online, aof == "yes", fsync)]


def durability(ack_replicas: int, online_replicas: int, aof: bool, fsync: str) -> Result:
    """Can the running Redis lose a message the webhook acknowledged? (see the module docstring)"""
    name, persisted = "redis.persistence", f"appendonly {'yes' if aof else 'no'}, appendfsync {fsync}"
    if ack_replicas > online_replicas:
        return Result(
            name,
            Status.FAIL,
            f"REDIS_ACK_REPLICAS={ack_replicas} but {online_replicas} replica(s) online: every webhook answers 503",
            f"Start replicas (see {_DEPLOY_DOC}) or lower REDIS_ACK_REPLICAS.",
        )
    if ack_replicas:
        detail = f"a 200 waits for {ack_replicas} of {online_replicas} replica(s) (WAIT); {persisted}"
        if not aof:
            return Result(
                name,
                Status.WARN,
                detail,
                "Turn on AOF on every node too: a primary restarted without data would wipe its replicas.",
            )
        return Result(name, Status.PASS, detail)
    if not aof:
        return Result(
            name,
            Status.WARN,
            f"{persisted}: a Redis restart loses every message acknowledged since the last snapshot",
            "Turn on AOF (appendonly yes) so a Redis restart does not drop queued jobs.",
        )
    if fsync == "always":
        return Result(name, Status.PASS, f"{persisted}: every acknowledged message is on disk")
    return Result(
        name,
        Status.WARN,
        f"{persisted}: a crash of the host (not only of Redis) can lose up to "
        + ("a second" if fsync == "everysec" else "tens of seconds")
        + " of acknowledged messages",
        f"Set appendfsync always, or run a replica with Sentinel and REDIS_ACK_REPLICAS (see {_DEPLOY_DOC}).",
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _config_value(client: redis.Redis, key: str) -> Any:
    value = client.config_get(key).get(key)
    return value.decode() if isinstance(value, bytes) else value
