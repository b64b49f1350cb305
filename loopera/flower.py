"""`loopera flower`: Flower on the same broker as the workers, never without authentication."""

from __future__ import annotations

import os
from typing import Any

from shared.config import ConfigError, Settings, is_placeholder


def flower_argv(settings: Settings) -> list[str]:
    """Flower's options; the credentials travel by environment (FLOWER_BASIC_AUTH), never argv (`ps` shows argv)."""
    if is_placeholder(settings.flower_basic_auth):
        if not settings.dev_flower_no_auth:
            raise ConfigError(
                "Flower cannot start without authentication: set FLOWER_BASIC_AUTH=user:password "
                "(or DEV_FLOWER_NO_AUTH=true for a local experiment only)."
            )
        os.environ.pop("FLOWER_BASIC_AUTH", None)
    else:
        credentials = settings.flower_basic_auth.get_secret_value()
        if any(":" not in pair or pair.endswith(":") for pair in credentials.split(",")):
            raise ConfigError("FLOWER_BASIC_AUTH must be user:password (comma-separated for several users)")
        os.environ["FLOWER_BASIC_AUTH"] = credentials  # .env values are not in os.environ by themselves
    return [
        "flower",
        f"--port={settings.port}",
        "--address=0.0.0.0",
        # Redeploys leave the old workers' names behind (flower#1422): forget them after 10 minutes.
        "--purge_offline_workers=600",
    ]


def monitoring_app(settings: Settings) -> Any:
    """The workers' broker, queues and routes, but not their task modules: those import the Groq SDK and ffmpeg,
    which the Flower image does not have (and Flower only needs task names, which arrive in the events)."""
    from celery import Celery

    from workers.runtime.celery_app import celery_config

    config = celery_config(settings)
    # kombu's own transport for the URL's scheme (redis:// or sentinel://): Flower names its broker view's client
    # after that scheme (flower/utils/broker.py), and our transport's fix only matters to a worker holding
    # unacknowledged jobs.
    config.pop("broker_transport")
    app = Celery("loopera")
    app.conf.update(config)
    return app
