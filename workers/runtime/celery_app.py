"""The Celery application and its configuration, shared by the text, audio and vision pools.

Settings follow Celery's "Using Redis" and task guides: late acks + reject on worker lost (a killed job is
redelivered, our tasks are idempotent), prefetch 1 (a slow voice note does not hold other messages hostage), a
visibility timeout above the hard time limit, no result backend (replies leave from inside the task), events on
for Flower.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from celery import Celery
from kombu.entity import Queue as KombuQueue

from shared.config import Settings, get_settings
from shared.jobs import TASK_ROUTES, Queue
from shared.redis_client import data_node_options, sentinel_options


def celery_config(settings: Settings) -> dict[str, Any]:
    if settings.celery_visibility_timeout <= settings.task_time_limit:
        raise ValueError("CELERY_VISIBILITY_TIMEOUT must exceed TASK_TIME_LIMIT, or running jobs get redelivered")
    if settings.task_soft_time_limit > settings.task_time_limit:
        # Celery then ignores both limits and refuses every retry (Reject: "soft_time_limit must be less than or
        # equal to time_limit"), which ended jobs without an answer.
        raise ValueError("TASK_SOFT_TIME_LIMIT must not exceed TASK_TIME_LIMIT")
    return {
        **broker_connection(settings),
        "task_routes": TASK_ROUTES,
        "task_queues": [KombuQueue(q.value, routing_key=q.value) for q in Queue],
        "task_default_queue": Queue.TEXT.value,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,
        "task_ignore_result": True,
        "task_soft_time_limit": settings.task_soft_time_limit,
        "task_time_limit": settings.task_time_limit,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        # Logging is ours (lifecycle.py, `setup_logging`): one JSON object per line, Celery's own lines included.
        # Redirected stdout/stderr would wrap each of our JSON lines in a `[time: WARNING/ForkPoolWorker-1]` line.
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        # A job keeps running when the broker connection drops (a Redis restart, a Sentinel failover): its own Redis
        # calls ride through, it records its reply and completes its mailbox. Cancelling it instead killed jobs
        # between Graph accepting a reply and the ledger saying so: the next copy then waited out the
        # in-flight marker and sent the reply again (seen in bench/failover.py). Running twice in parallel, which
        # the cancel guards against, is what the conversation claim prevents: the unacknowledged message that comes
        # back later finds its job done (not the mailbox head) and is skipped.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        # Pool processes replaced after a crash import the Groq SDK and httpx, seconds on a busy host; Celery's 4 s
        # default killed them as hung, again and again (seen in the failover benchmark under load).
        "worker_proc_alive_timeout": 30,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "broker_transport_options": {
            "visibility_timeout": settings.celery_visibility_timeout,
            "socket_timeout": 10,
            "socket_connect_timeout": 5,
            "socket_keepalive": True,
            "health_check_interval": 10,
            "retry_on_timeout": True,
            **sentinel_transport_options(settings),
        },
    }


def broker_connection(settings: Settings) -> dict[str, str]:
    """kombu's Redis transport plus a fix that keeps the worker alive across a Redis restart (broker.py); with
    REDIS_SENTINELS its Sentinel transport, one `sentinel://` URL per Sentinel carrying REDIS_URL's credentials
    and database (https://docs.celeryq.dev/en/stable/getting-started/backends-and-brokers/redis.html)."""
    if not settings.sentinel_addresses:
        return {"broker_url": settings.redis_url, "broker_transport": "workers.runtime.broker:Transport"}
    data_node_options(settings.redis_url)  # raises ConfigError for a URL Sentinel cannot serve
    parts = urlsplit(settings.redis_url)
    userinfo = parts.netloc.rpartition("@")[0]
    auth = f"{userinfo}@" if userinfo else ""
    db = parts.path.strip("/") or "0"
    urls = [f"sentinel://{auth}{_host(host)}:{port}/{db}" for host, port in settings.sentinel_addresses]
    return {"broker_url": ";".join(urls), "broker_transport": "workers.runtime.broker:SentinelTransport"}


def sentinel_transport_options(settings: Settings) -> dict[str, Any]:
    if not settings.sentinel_addresses:
        return {}
    return {"master_name": settings.redis_sentinel_master, "sentinel_kwargs": sentinel_options(settings)}


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def create_celery(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    app = Celery("loopera", include=["workers.runtime.tasks"])
    app.conf.update(celery_config(settings))
    return app


app = create_celery()

# Connect the worker's signal handlers wherever the app is loaded (lifecycle imports `app` from here).
from workers.runtime import lifecycle as _lifecycle  # noqa: E402, F401
