"""`loopera sandbox`: serve the sandbox on 127.0.0.1:SANDBOX_PORT until stopped."""

from __future__ import annotations

import uvicorn

from sandbox.app import create_app
from sandbox.config import SandboxConfig
from shared.config import Settings
from shared.logging import configure_logging


def serve(settings: Settings) -> None:
    """Raises SandboxRefusedError (sandbox.config) before binding anything when the settings are unsafe."""
    config = SandboxConfig.from_settings(settings)
    configure_logging(settings.log_level, settings.log_json)
    # Loopback only: the page and the Graph stand-in carry no authentication of their own.
    uvicorn.run(
        create_app(config),
        host="127.0.0.1",
        port=config.port,
        log_level="warning",
        # Open event streams would hold a stop for uvicorn's default graceful period.
        timeout_graceful_shutdown=2,
    )
