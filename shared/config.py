"""Service configuration, read once from the environment (and `.env`).

The seed bot's variable names are kept (VERIFY_TOKEN, WHATSAPP_TOKEN, APP_SECRET, PHONE_NUMBER_ID, GROQ_API_KEY,
REDIS_URL, PORT). Every model id lives here and nowhere else: Groq retires models, so ids must be configuration.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values people paste from tutorials or leave from `.env.example`. Starting with one of them would look like a
# working deployment while every signature check or API call fails.
PLACEHOLDERS = frozenset(
    {
        "",
        "changeme",
        "change-me",
        "changethis",
        "your_token",
        "your-token",
        "xxx",
        "todo",
        "secret",
        "placeholder",
    }
)

DEFAULT_SYSTEM_PROMPT = (
    "You are a friendly, helpful assistant chatting on WhatsApp. Always reply in the same language the user "
    "writes or speaks in. Keep replies short: a few sentences, no long lists, unless the user asks for detail. "
    "Use plain text; simple *bold* is fine."
)


class ConfigError(RuntimeError):
    """Raised at start-up when the configuration cannot work; the message says how to fix it."""


def is_placeholder(value: str | SecretStr | None) -> bool:
    if value is None:
        return True
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    lowered = raw.strip().lower()
    return lowered in PLACEHOLDERS or lowered.startswith(("your_", "your-", "<"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # --- the seed's variables -------------------------------------------------------------------------------
    verify_token: SecretStr = SecretStr("")
    whatsapp_token: SecretStr = SecretStr("")
    app_secret: SecretStr = SecretStr("")
    phone_number_id: str = ""
    groq_api_key: SecretStr = SecretStr("")
    redis_url: str = "redis://127.0.0.1:6379/0"
    port: int = 8000

    # --- Meta Graph API -------------------------------------------------------------------------------------
    graph_api_url: str = "https://graph.facebook.com"
    # v21.0 (the seed's) is served only until Jan 2027; v25.0 is supported until Jul 2028.
    graph_api_version: str = "v25.0"
    waba_id: str = ""
    graph_timeout_seconds: float = 15.0

    # --- Groq -----------------------------------------------------------------------------------------------
    # The SDK appends /openai/v1/... itself: this is the host root.
    groq_base_url: str = "https://api.groq.com"
    groq_timeout_seconds: float = 60.0
    chat_model: str = "openai/gpt-oss-120b"
    chat_reasoning_effort: Literal["low", "medium", "high", ""] = "low"
    chat_max_completion_tokens: int = 1024
    stt_model: str = "whisper-large-v3-turbo"
    tts_model: str = "canopylabs/orpheus-v1-english"
    tts_voice: str = "autumn"
    tts_arabic_model: str = ""
    tts_arabic_voice: str = "noura"
    vision_model: str = "qwen/qwen3.8-27b"
    system_prompt: str = Field(default=DEFAULT_SYSTEM_PROMPT)
    system_prompt_file: Path | None = None

    # --- webhook ingress ------------------------------------------------------------------------------------
    # Meta documents payloads up to 3 MB; anything larger is not Meta.
    max_webhook_bytes: int = 3 * 1024 * 1024
    # Meta retries for 7 days; keep markers a day longer so a late retry is still recognised.
    dedupe_ttl_seconds: int = 8 * 24 * 3600
    # DANGER: only for local experiments without a Meta app. Disables signature checks.
    dev_insecure_skip_signature: bool = False

    # --- conversation ---------------------------------------------------------------------------------------
    memory_max_messages: int = 20
    memory_ttl_seconds: int = 24 * 3600
    # Messages older than this (Meta's outage backlog) get a short apology instead of an AI answer.
    stale_message_seconds: int = 3600

    # --- workers --------------------------------------------------------------------------------------------
    worker_concurrency: int = 4
    task_soft_time_limit: int = 240
    task_time_limit: int = 300
    # Must exceed the hard limit plus the longest countdown we issue (celery-redis-flower.md section 1).
    celery_visibility_timeout: int = 900
    # How long a conversation stays claimed by a job that stopped heart-beating (a SIGKILLed worker).
    conversation_lease_seconds: int = 360
    send_marker_ttl_seconds: int = 8 * 24 * 3600
    task_deadline_seconds: int = 900

    # Attempts for failures that are not rate-limit deferrals (those only spend the deadline, not attempts).
    task_max_retries: int = 8

    # --- rate limits ----------------------------------------------------------------------------------------
    # Global Groq budgets per model, shared by every worker through Redis (workers/rate_limit.py). Defaults are
    # the free-tier figures of groq-api.md section 3; raise them for a paid plan. 0 switches a dimension off.
    rate_limits_enabled: bool = True
    # The "per minute" window and the "audio seconds per hour" window (tests shorten them).
    rate_limit_window_seconds: float = 60.0
    rate_limit_audio_window_seconds: float = 3600.0
    chat_rpm: int = 30
    chat_tpm: int = 8000
    vision_rpm: int = 30
    vision_tpm: int = 8000
    stt_rpm: int = 20
    stt_audio_seconds_per_hour: int = 7200
    tts_rpm: int = 10
    tts_tpm: int = 1200

    # --- observability --------------------------------------------------------------------------------------
    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("graph_api_url", "groq_base_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def graph_base(self) -> str:
        return f"{self.graph_api_url}/{self.graph_api_version}"

    def resolved_system_prompt(self) -> str:
        if self.system_prompt_file is not None:
            return self.system_prompt_file.read_text(encoding="utf-8").strip()
        return self.system_prompt

    def missing_secrets(self, names: tuple[str, ...]) -> list[str]:
        return [name.upper() for name in names if is_placeholder(getattr(self, name))]

    def require(self, names: tuple[str, ...], role: str) -> None:
        """Fail fast: a service that starts with a placeholder secret fails later, on every message."""
        missing = self.missing_secrets(names)
        if missing:
            raise ConfigError(
                f"{role} cannot start: missing or placeholder value for {', '.join(missing)}. "
                "Set them in the environment or in .env (see .env.example)."
            )


API_SECRETS = ("verify_token", "phone_number_id")
WORKER_SECRETS = ("whatsapp_token", "phone_number_id", "groq_api_key")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
