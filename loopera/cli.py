"""`loopera`: one entry point for every role (api, worker, flower) and the operator's tools."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import Annotated, Any

import typer

from shared.config import ConfigError, get_settings

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Loopera WhatsApp assistant")
dlq_cli = typer.Typer(no_args_is_help=True, help="Dead-letter jobs: list and replay")
cli.add_typer(dlq_cli, name="dlq")


class Pool(StrEnum):
    TEXT = "text"
    AUDIO = "audio"
    VISION = "vision"
    ALL = "all"


class PoolImpl(StrEnum):
    PREFORK = "prefork"
    THREADS = "threads"
    SOLO = "solo"


def uvicorn_options() -> dict[str, Any]:
    """The server settings of `loopera api`; the ack-path benchmark serves its bare-ASGI floor with the same ones."""
    return {
        "loop": "uvloop" if sys.platform != "win32" else "asyncio",
        "http": "httptools",
        "access_log": False,
        "log_level": "warning",
        "timeout_graceful_shutdown": 20,
    }


@cli.command()
def api(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "0.0.0.0",  # noqa: S104 - a container server
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """Serve the webhook API on $PORT (read here, so no shell is needed to expand it)."""
    import uvicorn

    settings = get_settings()
    uvicorn.run("api.app:create_app", factory=True, host=host, port=settings.port, workers=workers, **uvicorn_options())


@cli.command()
def worker(
    pool: Annotated[Pool, typer.Option(help="Which queue(s) to consume")] = Pool.ALL,
    concurrency: Annotated[int | None, typer.Option(help="Processes/threads (default WORKER_CONCURRENCY)")] = None,
    pool_impl: Annotated[PoolImpl, typer.Option("--pool-impl", help="Celery execution pool")] = PoolImpl.PREFORK,
    name: Annotated[str | None, typer.Option(help="Node name (default <pool>@<host>)")] = None,
) -> None:
    """Run a Celery worker for one pool (text, audio, vision) or all of them."""
    from workers.celery_app import app

    settings = get_settings()
    queues = "text,audio,vision" if pool is Pool.ALL else pool.value
    argv = [
        "worker",
        f"--queues={queues}",
        f"--concurrency={concurrency or settings.worker_concurrency}",
        f"--pool={pool_impl.value}",
        f"--hostname={name or pool.value + '@%h'}",
        f"--loglevel={settings.log_level}",
        "--task-events",
        "--without-gossip",
        "--without-mingle",
    ]
    app.worker_main(argv)


@dlq_cli.command("list")
def dlq_list(limit: Annotated[int, typer.Option(help="How many")] = 20) -> None:
    """Show dead-letter jobs, newest first (index, reason, task, age)."""
    import time

    from shared.redis_client import sync_redis
    from workers.dead_letters import DeadLetters

    records = DeadLetters(sync_redis(get_settings().redis_url)).list(limit)
    if not records:
        typer.echo("no dead-letter jobs")
    for index, record in enumerate(records):
        age = int(time.time() - record["failed_at"])
        typer.echo(f"{index}\t{record['reason']}\t{record['task']}\t{age}s ago\t{record.get('detail', '')[:80]}")


@dlq_cli.command("replay")
def dlq_replay(
    index: Annotated[int | None, typer.Argument(help="Index from `loopera dlq list`; omit with --all")] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="Replay every dead-letter job")] = False,
) -> None:
    """Put dead-letter jobs back into their conversation's queue."""
    from shared.redis_client import sync_redis
    from shared.requeue import requeue_job
    from workers.dead_letters import DeadLetters

    settings = get_settings()
    client = sync_redis(settings.redis_url)
    dead = DeadLetters(client)
    if index is None and not replay_all:
        raise typer.BadParameter("give an index or --all")
    replayed = 0
    while True:
        record = dead.remove(0 if replay_all else int(index or 0))
        if record is None:
            break
        task_id = requeue_job(client, record["payload"], settings.conversation_lease_seconds)
        typer.echo(f"replayed {record['reason']} as task {task_id}")
        replayed += 1
        if not replay_all:
            break
    if not replayed:
        typer.echo("nothing to replay")
        raise typer.Exit(1)


def main() -> None:
    try:
        cli()
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise SystemExit(2) from exc


if __name__ == "__main__":
    main()
