"""The worker's lifecycle, hooked to Celery's signals: checks at start, one context per process, the lease reaper
thread, and the heartbeat file that `loopera healthcheck worker` reads."""

from __future__ import annotations

import os
import threading
from typing import Any

from celery import Celery
from celery.apps import worker as celery_worker_app
from celery.signals import (
    heartbeat_sent,
    setup_logging,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)

from shared.config import ConfigError, Settings, get_settings, worker_secrets
from shared.jobs import Queue
from shared.logging import configure_logging, get_logger, route_stdlib_logging
from shared.redis_client import sync_redis
from workers.runtime.celery_app import app

log = get_logger("workers")


def _consumes_audio(celery: Celery) -> bool:
    """True when this worker takes jobs from the `audio` queue (`--pool audio` or `all`)."""
    selected = celery.amqp.queues.consume_from
    return not selected or Queue.AUDIO.value in selected


def _check_voice_tools(settings: Settings) -> None:
    """Only the audio pool needs ffmpeg and voices: text and vision workers start without them. An audio worker
    without ffmpeg (or libopus), with a TTS_VOICES it cannot read or a voice it cannot find refuses to start,
    instead of failing every voice reply over to text."""
    if not _consumes_audio(app):
        return
    from workers.media.transcode import check_ffmpeg

    version = check_ffmpeg(settings.ffmpeg_binary)
    log.info("worker.ffmpeg_ok", version=version)
    from workers.voice.setup import check_voice_routes

    log.info("worker.voices_ok", routes=check_voice_routes(settings))


@setup_logging.connect
def _setup_logging(**_: Any) -> None:
    # Connecting this signal is Celery's documented way to take over logging: Celery then installs no handlers and
    # redirects no output (in the parent and in every pool process), so its own records reach our JSON renderer.
    settings = get_settings()
    configure_logging(
        settings.log_level, settings.log_json, with_process=True, message_key=settings.message_hashing_key()
    )
    route_stdlib_logging(settings.log_level, settings.log_json, with_process=True)


def _say(message: str, *_: Any, **__: Any) -> None:
    """Celery prints a few shutdown notices straight to the terminal (`safe_say`), bypassing logging."""
    log.warning("celery.notice", message=message)


# The one framework line that bypasses logging: without this, "worker: Warm shutdown (MainProcess)" and its
# siblings would be the only lines of the worker's output that are not JSON.
celery_worker_app.safe_say = _say


@worker_init.connect
def _init_worker(**_: Any) -> None:
    # In the parent, before any pool process forks. Celery logs and swallows exceptions raised by signal handlers
    # (the worker would run on without ffmpeg), and a child that exits is simply respawned, so the check lives
    # here and stops the whole worker with one clear error and a non-zero exit status.
    from workers.media.transcode import VoiceSetupError
    from workers.pipelines.audio import VOICE_HINT
    from workers.pipelines.request_budget import check_system_prompt_fits

    settings = get_settings()
    configure_logging(
        settings.log_level, settings.log_json, with_process=True, message_key=settings.message_hashing_key()
    )
    try:
        settings.require(
            worker_secrets(settings), "The worker"
        )  # `loopera worker` checks first; this covers `celery worker`
    except ConfigError as exc:
        raise SystemExit(f"configuration error: {exc}") from exc
    try:
        _check_voice_tools(settings)
    except VoiceSetupError as exc:
        log.error("worker.ffmpeg_unusable", error=str(exc))
        raise SystemExit(f"loopera worker: {exc}") from exc
    try:
        check_system_prompt_fits(settings, settings.resolved_system_prompt(), VOICE_HINT)
    except ConfigError as exc:
        log.error("worker.system_prompt_too_long", error=str(exc))
        raise SystemExit(f"loopera worker: {exc}") from exc


@worker_process_init.connect
def _init_process(**_: Any) -> None:
    from workers.runtime.process import get_context

    settings = get_settings()
    configure_logging(
        settings.log_level, settings.log_json, with_process=True, message_key=settings.message_hashing_key()
    )
    get_context()  # fail fast (and once) on bad configuration, not on the first message


@worker_process_shutdown.connect
def _close_process(**_: Any) -> None:
    from workers.runtime.process import close_context

    close_context()
    from workers.metrics import mark_process_dead

    mark_process_dead(os.getpid())


class _Reaper:
    """Hands out again the head job of any conversation whose lease expired (its worker was SIGKILLed)."""

    def __init__(self) -> None:
        self._stop = threading.Event()

    def start(self, settings: Settings) -> None:
        from workers.delivery.lease import ConversationLeases

        leases = ConversationLeases(sync_redis(settings), settings.conversation_lease_seconds)
        interval = max(1.0, min(10.0, settings.conversation_lease_seconds / 4))

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    if count := leases.reap():
                        log.warning("lease.reaped", conversations=count)
                except Exception as exc:  # Redis down: try again next round
                    log.warning("lease.reap_failed", error=type(exc).__name__)

        threading.Thread(target=loop, name="loopera-reaper", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()


_reaper = _Reaper()


@worker_ready.connect
def _start_reaper(**_: Any) -> None:
    settings = get_settings()
    configure_logging(
        settings.log_level, settings.log_json, with_process=True, message_key=settings.message_hashing_key()
    )
    _reaper.start(settings)
    metrics_port = None
    if settings.worker_metrics_port:
        from workers.metrics import start_metrics_server

        metrics_port = start_metrics_server(settings.worker_metrics_port)
    _on_heartbeat()  # healthy from the first moment, not only after the first 2 s tick
    if settings.sandbox:
        log.warning(
            "worker.sandbox_mode",
            detail="running against the local sandbox (docs/sandbox.md), not Meta",
            graph_api_url=settings.graph_api_url,
        )
    if settings.group_replies == "mention" and not (
        settings.business_display_name or settings.business_display_phone_number
    ):
        # With neither set nothing can name the bot, and it never speaks first in a group, so no reply to it can
        # exist either: the default policy would silently never answer a group (docs/message-types.md#groups).
        log.warning(
            "groups.never_addressed",
            detail="GROUP_REPLIES=mention: set BUSINESS_DISPLAY_NAME or BUSINESS_DISPLAY_PHONE_NUMBER to answer groups",
        )
    log.info("worker.ready", metrics_port=metrics_port, sandbox=settings.sandbox)


@heartbeat_sent.connect
def _on_heartbeat(**_: Any) -> None:
    # Runs in the consumer's event loop (every 2 s while it is connected and spinning): if the loop wedges or
    # loses the broker, the file goes stale and `loopera healthcheck worker` fails.
    from workers.metrics import touch_heartbeat

    touch_heartbeat(get_settings().worker_heartbeat_file)


@worker_shutdown.connect
def _stop_reaper(**_: Any) -> None:
    _reaper.stop()
