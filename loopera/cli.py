"""`loopera`: one entry point for every role (api, worker, flower) and the operator's tools."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from redis.exceptions import RedisError

from shared.config import ConfigError, get_settings, is_placeholder, worker_secrets
from shared.identity import conversation_for

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Loopera WhatsApp assistant")
dlq_cli = typer.Typer(no_args_is_help=True, help="Dead-letter jobs: list and replay")
cli.add_typer(dlq_cli, name="dlq")
handoff_cli = typer.Typer(no_args_is_help=True, help="Conversations a person has taken over (docs/handoff.md)")
cli.add_typer(handoff_cli, name="handoff")
user_cli = typer.Typer(no_args_is_help=True, help="A user's data, for requests that arrive by other channels")
cli.add_typer(user_cli, name="user")
# Conversations are keyed by digests (shared/identity.py): an operator names the person, the CLI finds the key.
PERSON_HELP = "The user's phone number (wa_id), business-scoped user id, or a conversation id from `handoff list`"


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
    settings = get_settings()
    return {
        "loop": "uvloop" if sys.platform != "win32" else "asyncio",
        # httptools with a deadline for reading each request (slowloris), by import path so `--workers N` can
        # load it in each process.
        "http": "api.http_protocol:TimedHttpToolsProtocol",
        # Beyond this many connections (or requests in progress), uvicorn answers 503 and closes the connection.
        "limit_concurrency": settings.api_max_connections,
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
def sandbox() -> None:
    """Serve the sandbox (a local stand-in for Meta and its chat page) on 127.0.0.1:$SANDBOX_PORT (docs/sandbox.md).

    `make run` starts it with the API and workers; alone it needs the secrets `make run` generates."""
    from sandbox.server import serve

    serve(get_settings())


@cli.command()
def worker(
    pool: Annotated[Pool | None, typer.Option(help="Which queue(s) to consume (default WORKER_POOL)")] = None,
    concurrency: Annotated[int | None, typer.Option(help="Processes/threads (default WORKER_CONCURRENCY)")] = None,
    pool_impl: Annotated[
        PoolImpl | None, typer.Option("--pool-impl", help="Celery execution pool (default WORKER_POOL_IMPL)")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Node name (default <pool>@<host>)")] = None,
) -> None:
    """Run a Celery worker for one pool (text, audio, vision) or all of them."""
    from loopera.worker_env import prepare_multiprocess_dir

    prepare_multiprocess_dir()  # before anything imports prometheus_client (see workers/metrics.py)
    settings = get_settings()
    # Before Celery starts: a pool process that fails on a missing secret is respawned forever, logging tracebacks.
    settings.require(worker_secrets(settings), "The worker")  # in the sandbox GROQ_API_KEY may be missing
    settings.worker_heartbeat_file.unlink(missing_ok=True)  # unhealthy until this run's consumer beats
    from shared.logging import configure_logging, route_stdlib_logging

    # Now, not at Celery's `setup_logging`: Celery warns (e.g. SecurityWarning for root) before it sets up logging.
    configure_logging(
        settings.log_level, settings.log_json, with_process=True, message_key=settings.message_hashing_key()
    )
    route_stdlib_logging(settings.log_level, settings.log_json, with_process=True)
    pool = pool or Pool(settings.worker_pool)
    pool_impl = pool_impl or PoolImpl(settings.worker_pool_impl)

    from workers.runtime.celery_app import app

    queues = "text,audio,vision" if pool is Pool.ALL else pool.value
    argv = [
        "--quiet",  # no ASCII banner on stdout: every line of the worker's output is a JSON log event
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


class Role(StrEnum):
    API = "api"
    WORKER = "worker"
    FLOWER = "flower"


@cli.command()
def healthcheck(role: Annotated[Role, typer.Argument(help="Which process to check")]) -> None:
    """Container HEALTHCHECK: exit 0 if this container's process is alive and working, else 1."""
    from loopera import healthcheck as checks

    settings = get_settings()
    check = {Role.API: checks.check_api, Role.WORKER: checks.check_worker, Role.FLOWER: checks.check_flower}[role]
    healthy, detail = check(settings)
    typer.echo(f"{'healthy' if healthy else 'UNHEALTHY'}: {detail}")
    raise typer.Exit(0 if healthy else 1)


@cli.command()
def flower(
    dev_no_auth: Annotated[
        bool, typer.Option("--dev-no-auth", help="Local experiments only: run without basic auth")
    ] = False,
) -> None:
    """Flower on the same broker, on $PORT, with basic auth from FLOWER_BASIC_AUTH (user:password).

    Flower's /metrics and /healthcheck are not authenticated: keep Flower on private networking."""
    from loopera.flower import flower_argv

    settings = get_settings()
    if dev_no_auth:
        settings = settings.model_copy(update={"dev_flower_no_auth": True})
    argv = flower_argv(settings)

    from loopera.flower import monitoring_app

    monitoring_app(settings).start(argv)


@cli.command()
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
    skip: Annotated[
        list[str] | None,
        typer.Option(help="Skip a check: env, phone_number_id, token, subscription, redis, ffmpeg, groq, tts_terms"),
    ] = None,
) -> None:
    """Check this deployment's configuration against Meta, Groq, Redis and ffmpeg; exit 1 if anything fails."""
    import json

    from loopera.doctor import Doctor, Status, render_table

    with Doctor(get_settings()) as checker:
        results = checker.run(frozenset(skip or ()))
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        typer.echo(render_table(results))
    raise typer.Exit(1 if any(r.status is Status.FAIL for r in results) else 0)


@cli.command()
def subscribe(
    callback_uri: Annotated[
        str | None, typer.Option(help="override_callback_uri for this WABA (Meta verifies it with VERIFY_TOKEN)")
    ] = None,
) -> None:
    """Subscribe the app to WABA_ID's webhooks (POST subscribed_apps), then read the subscription back."""
    from loopera.subscribe import GraphRequestError
    from loopera.subscribe import subscribe as do_subscribe

    settings = get_settings()
    try:
        result = do_subscribe(settings, callback_uri)
    except GraphRequestError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    for app in result.apps:
        data = app.get("whatsapp_business_api_data", {})
        override = app.get("override_callback_uri")
        typer.echo(f"subscribed: app {data.get('id')} ({data.get('name')})" + (f" -> {override}" if override else ""))
    if not result.includes(settings.meta_app_id):
        typer.echo("the app is NOT in the subscription list read back", err=True)
        raise typer.Exit(1)
    _subscribe_webhook_fields(settings)


def _subscribe_webhook_fields(settings: Any) -> None:
    """The app's webhook fields, smb_message_echoes included (docs/handoff.md); skipped without META_APP_ID."""
    import httpx

    from loopera.subscribe import GraphRequestError, subscribe_fields

    if is_placeholder(settings.meta_app_id) or is_placeholder(settings.app_secret):
        typer.echo("webhook fields: skipped (set META_APP_ID and APP_SECRET to subscribe smb_message_echoes)")
        return
    try:
        with httpx.Client(timeout=settings.graph_timeout_seconds) as client:
            fields = subscribe_fields(settings, client)
    except (GraphRequestError, ConfigError) as exc:
        typer.echo(f"webhook fields: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"webhook fields: {', '.join(fields)}")


@cli.command()
def simulate(
    text: Annotated[str | None, typer.Option(help="Send a text message")] = None,
    voice: Annotated[Path | None, typer.Option(help="Send this audio file as a voice note", exists=True)] = None,
    image: Annotated[Path | None, typer.Option(help="Send this image", exists=True)] = None,
    caption: Annotated[str | None, typer.Option(help="Caption for --image")] = None,
    api_url: Annotated[str | None, typer.Option("--api", help="API base URL (default http://127.0.0.1:$PORT)")] = None,
    graph_port: Annotated[
        int | None, typer.Option(help="Run a local Graph stand-in here (workers need GRAPH_API_URL pointing at it)")
    ] = None,
    wait: Annotated[float, typer.Option(help="Seconds to wait for the bot's reply (needs --graph-port)")] = 60.0,
    sender: Annotated[str, typer.Option(help="The simulated user's wa_id")] = "15550001111",
) -> None:
    """Send a correctly signed webhook to a running API, for local testing without Meta."""
    from loopera import simulate as sim

    settings = get_settings()
    if sum(x is not None for x in (text, voice, image)) != 1:
        raise typer.BadParameter("give exactly one of --text, --voice, --image")
    if is_placeholder(settings.app_secret) or is_placeholder(settings.phone_number_id):
        raise ConfigError("simulate signs with APP_SECRET and addresses PHONE_NUMBER_ID: set both, as for the API")
    if (voice or image) and graph_port is None:
        raise typer.BadParameter("--voice/--image need --graph-port: the worker downloads the file from there")
    request = sim.Simulation(text=text, voice=voice, image=image, caption=caption, sender=sender)
    ok = sim.run(settings, request, api_url or f"http://127.0.0.1:{settings.port}", graph_port, wait, typer.echo)
    raise typer.Exit(0 if ok else 1)


@cli.command()
def trace(
    message: Annotated[
        str, typer.Argument(help="Meta's message id (wamid...), or its ref as logs and dead letters show it")
    ],
    show_content: Annotated[
        bool, typer.Option("--show-content", help="Also print personal data: number, name, text, answers, Meta ids")
    ] = False,
) -> None:
    """The whole story of one message from its ledger: received, queued, claimed, stages, attempts, sends, memory."""
    from loopera.trace import find_ref, ref_for, render
    from shared.ledger import as_text, ledger_key
    from shared.logging import set_correlation_key
    from shared.redis_client import sync_redis

    settings = get_settings()
    key = settings.message_hashing_key()
    set_correlation_key(key)  # the id the services' log lines carry
    ref = ref_for(message, key)
    client = sync_redis(settings)
    fields = {as_text(name): as_text(value) for name, value in client.hgetall(ledger_key(ref)).items()}
    if not fields and ref != message and (found := find_ref(client, message)) is not None:
        # Hashed with another key than ours (a sandbox run generates its app secret): found by reading the ledgers.
        ref = found
        fields = {as_text(name): as_text(value) for name, value in client.hgetall(ledger_key(ref)).items()}
    for line in render(ref, fields, key, show_content):
        typer.echo(line)
    if not fields:
        raise typer.Exit(1)


@dlq_cli.command("list")
def dlq_list(limit: Annotated[int, typer.Option(help="How many")] = 20) -> None:
    """Show dead-letter jobs, newest first (index, reason, task, age)."""
    import time

    from shared.redis_client import sync_redis
    from workers.delivery.dead_letters import DeadLetters

    records = DeadLetters(sync_redis(get_settings())).list(limit)
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
    from shared.dead_letters import STATUS_TASK
    from shared.redis_client import sync_redis
    from workers.delivery.dead_letters import DeadLetters
    from workers.delivery.requeue import requeue_job

    settings = get_settings()
    client = sync_redis(settings)
    dead = DeadLetters(client)
    if index is None and not replay_all:
        raise typer.BadParameter("give an index or --all")
    replayed = 0
    position = 0 if replay_all else int(index or 0)
    while True:
        entry = dead.peek(position)
        if entry is None:
            break
        raw, record = entry
        if record["task"] == STATUS_TASK:
            # Meta accepted the reply and then could not deliver it: there is no job to run again.
            if not replay_all:
                typer.echo(f"{record['reason']}: a reply Meta could not deliver; nothing to replay")
                raise typer.Exit(1)
            position += 1
            continue
        # Requeue first, remove second: a failure in between leaves the record (a replay twice is harmless, the
        # send-once markers stop a second reply), never a job that is in neither place.
        task_id = requeue_job(
            client, record["payload"], settings.conversation_lease_seconds, settings.message_ledger_ttl_seconds
        )
        dead.discard(raw)
        typer.echo(f"replayed {record['reason']} as task {task_id}")
        replayed += 1
        if not replay_all:
            break
    if not replayed:
        typer.echo("nothing to replay")
        raise typer.Exit(1)


@user_cli.command("export")
def user_export(
    user: Annotated[str, typer.Argument(help=PERSON_HELP)],
    out: Annotated[Path | None, typer.Option(help="Write the JSON here instead of printing it")] = None,
) -> None:
    """Everything stored about a user as JSON: memory, conversation state, messages (transcripts, cached answers),
    dead letters (docs/commands.md)."""
    import orjson

    from shared.redis_client import sync_redis
    from workers.pipelines.user_data import collect

    settings = get_settings()
    client = sync_redis(settings)
    conversation = conversation_for(client, user, settings.message_hashing_key())
    document = orjson.dumps(collect(client, conversation), option=orjson.OPT_INDENT_2)
    if out is None:
        typer.echo(document.decode())
    else:
        out.write_bytes(document)
        typer.echo(f"written to {out}")


@user_cli.command("delete")
def user_delete(
    user: Annotated[str, typer.Argument(help=PERSON_HELP)],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
) -> None:
    """Erase everything stored about a user, queued messages included; no message is sent to them. What remains
    (keyed-hash dedupe markers): docs/commands.md."""
    from shared.redis_client import sync_redis
    from workers.pipelines.user_data import erase

    if not yes:
        typer.confirm("Erase everything stored about this user?", abort=True)
    settings = get_settings()
    client = sync_redis(settings)
    conversation = conversation_for(client, user, settings.message_hashing_key())
    erased = erase(client, conversation, settings.whatsapp_token.get_secret_value())
    summary = erased.summary()
    typer.echo(f"erased {summary['messages']} messages, {summary['dead_letters']} dead letters, {summary['keys']} keys")


@handoff_cli.command("pause")
def handoff_pause(
    user: Annotated[str, typer.Argument(help=PERSON_HELP)],
    minutes: Annotated[int | None, typer.Option(help="Default: HANDOFF_PAUSE_MINUTES")] = None,
) -> None:
    """Silence the bot in a conversation (a person answers); nothing is sent to the user."""
    import time

    from shared.handoff import pause
    from shared.redis_client import sync_redis

    settings = get_settings()
    client = sync_redis(settings)
    conversation = conversation_for(client, user, settings.message_hashing_key())
    until = pause(client, conversation, minutes or settings.handoff_pause_minutes)
    typer.echo(f"paused until {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(until / 1000))}")


@handoff_cli.command("resume")
def handoff_resume(
    user: Annotated[str, typer.Argument(help=PERSON_HELP)],
) -> None:
    """Give the conversation back to the bot now: its next message is answered (with what was said meanwhile)."""
    from shared.handoff import resume
    from shared.redis_client import sync_redis

    settings = get_settings()
    client = sync_redis(settings)
    was_paused = resume(client, conversation_for(client, user, settings.message_hashing_key()))
    typer.echo("resumed" if was_paused else "was not paused")


@handoff_cli.command("list")
def handoff_list() -> None:
    """Paused conversations and when each pause ends."""
    import time

    from shared.handoff import paused_conversations
    from shared.redis_client import sync_redis

    paused = paused_conversations(sync_redis(get_settings()))
    if not paused:
        typer.echo("no paused conversations")
    for conversation, until in sorted(paused.items(), key=lambda item: item[1]):
        typer.echo(f"{conversation}\tuntil {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(until / 1000))}")


def main() -> None:
    try:
        cli()
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise SystemExit(2) from exc
    except RedisError as exc:
        # An operator verb run while Redis is down (e.g. right after `make run` stopped its own): one line.
        typer.echo(f"redis not reachable at REDIS_URL ({type(exc).__name__}); `loopera doctor` checks it", err=True)
        raise SystemExit(2) from exc


if __name__ == "__main__":
    main()
