"""What the sandbox needs from the service's settings, and the checks that keep a real token away from it."""

from __future__ import annotations

from dataclasses import dataclass

from shared.config import ConfigError, Settings, is_placeholder, is_sandbox_token


class SandboxRefusedError(ConfigError):
    """The sandbox must not start with these settings; the message says why and what to do."""


@dataclass(frozen=True)
class SandboxConfig:
    api_url: str  # where webhooks go: the API's base URL
    app_secret: str
    phone_number_id: str
    token: str  # the bearer token the workers present (generated, `sandbox-...`)
    graph_version: str
    port: int
    ffmpeg: str = "ffmpeg"
    groq_key_missing: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, api_url: str | None = None) -> SandboxConfig:
        check(settings)
        return cls(
            api_url=(api_url or f"http://127.0.0.1:{settings.port}").rstrip("/"),
            app_secret=settings.app_secret.get_secret_value(),
            phone_number_id=settings.phone_number_id,
            token=settings.whatsapp_token.get_secret_value(),
            graph_version=settings.graph_api_version,
            port=settings.sandbox_port,
            ffmpeg=settings.ffmpeg_binary,
            groq_key_missing=is_placeholder(settings.groq_api_key),
        )


def check(settings: Settings) -> None:
    """Raises SandboxRefusedError when WHATSAPP_TOKEN is a real token or the generated secrets are missing."""
    token = settings.whatsapp_token
    if not is_placeholder(token) and not is_sandbox_token(token):
        raise SandboxRefusedError(
            "The sandbox refuses to start: WHATSAPP_TOKEN holds a real token, and the sandbox must never receive "
            "one. Empty WHATSAPP_TOKEN in .env to use the sandbox, or fill in every Meta setting to run against Meta."
        )
    missing = [
        name.upper()
        for name in ("app_secret", "phone_number_id", "whatsapp_token")
        if is_placeholder(getattr(settings, name))
    ]
    if missing:
        raise SandboxRefusedError(
            f"The sandbox needs {', '.join(missing)}: start it with `make run`, which generates them for the API, "
            "the workers and the sandbox alike (docs/sandbox.md)."
        )
