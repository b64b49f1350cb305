"""Service configuration, read once from the environment (and `.env`).

The original single-file bot's variable names are kept (VERIFY_TOKEN, WHATSAPP_TOKEN, APP_SECRET, PHONE_NUMBER_ID,
GROQ_API_KEY, REDIS_URL, PORT). Every model id lives here and nowhere else: Groq retires models, so ids must be
configuration.
"""

from __future__ import annotations

import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.ledger import hashing_key

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

    # --- the original bot's variables ---------------------------------------------------------------------
    verify_token: SecretStr = SecretStr("")
    whatsapp_token: SecretStr = SecretStr("")
    app_secret: SecretStr = SecretStr("")
    # The key of the hash that stands for a message id in Redis keys, task arguments and logs (a wamid encodes the
    # sender's phone number). Unset: derived from APP_SECRET. Changing either changes every message's ref.
    message_key_secret: SecretStr = SecretStr("")
    phone_number_id: str = ""
    groq_api_key: SecretStr = SecretStr("")
    redis_url: str = "redis://127.0.0.1:6379/0"
    port: int = 8000

    # --- Redis high availability (docs/deployment.md#redis-with-sentinel) -----------------------------------
    # Comma-separated host:port of Redis Sentinels. When set, every client (the API's ingest channel, workers,
    # Celery's broker, Flower, the CLI) asks them for the current primary and follows a failover; REDIS_URL then
    # gives only the database number and the data nodes' credentials (its host and port are not used).
    redis_sentinels: str = ""
    # The name the Sentinels monitor (`sentinel monitor <name> ...`).
    redis_sentinel_master: str = "mymaster"
    # The Sentinels' own password (`requirepass` in sentinel.conf), if they have one.
    redis_sentinel_password: SecretStr = SecretStr("")
    # The webhook answers 200 only after this many replicas confirmed the write (Redis WAIT). Unset: 1 with
    # Sentinel, 0 without. Fewer confirmations within REDIS_ACK_WAIT_MS -> 503, and Meta redelivers.
    redis_ack_replicas: int | None = Field(default=None, ge=0)
    redis_ack_wait_ms: int = Field(default=500, gt=0)

    # --- Meta Graph API -------------------------------------------------------------------------------------
    graph_api_url: str = "https://graph.facebook.com"
    # v21.0 is served only until Jan 2027; v25.0 is supported until Jul 2028.
    graph_api_version: str = "v25.0"
    waba_id: str = ""
    graph_timeout_seconds: float = 15.0
    # A send whose HTTP answer was lost (a timeout, a reset after the request was written) may have reached Meta:
    # its part is sent again only when no status webhook confirmed it within this many seconds (a deferral, not a
    # sleep; docs/guarantees.md). 0: resend at once.
    send_confirm_wait_seconds: float = Field(default=20.0, ge=0)

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
    # Context windows (tokens) of CHAT_MODEL and VISION_MODEL, from their model pages
    # (https://console.groq.com/docs/models). A request's prompt budget is min(window, *_TPM) - *_MAX_COMPLETION_TOKENS
    # (docs/configuration.md#model-request-budgets).
    chat_context_window_tokens: int = Field(default=131_072, gt=0)
    vision_context_window_tokens: int = Field(default=131_072, gt=0)
    system_prompt: str = Field(default=DEFAULT_SYSTEM_PROMPT)
    system_prompt_file: Path | None = None

    # --- voice notes (audio pool) -----------------------------------------------------------------------------
    # Inbound caps, checked before any Groq call. WhatsApp itself allows audio up to 16 MB.
    max_voice_bytes: int = 16 * 1024 * 1024
    # Whisper bills per audio second and the free tier allows 7.2K s/hour: a long note is refused politely.
    max_voice_seconds: int = 300
    # Comma-separated ISO 639-1 codes answered with a voice note; every other language gets text. "ar" speaks only
    # when TTS_ARABIC_MODEL is set (Orpheus English would mangle Arabic).
    voice_reply_languages: str = "en"
    # Longer replies go out as text: Orpheus takes 200 characters per request at 10 RPM on the free tier.
    voice_reply_max_chars: int = 600
    # WhatsApp shows the inline play button only up to 512 KB; above that the reply is sent as text.
    voice_note_max_bytes: int = 512 * 1024
    voice_bitrate: str = "24k"
    # WhatsApp hides the typing indicator after ~25 s; re-send it this often while a voice note is worked on.
    typing_refresh_seconds: float = 20.0
    # A TTS 429 that asks to wait at most this long is waited out inline once; longer (a daily limit) -> text.
    tts_max_wait_seconds: float = 10.0
    # Whisper's confidence (docs/voice.md#what-whisper-heard): a segment with no_speech_prob above STT_NO_SPEECH_PROB
    # and avg_logprob at or below STT_LOGPROB_THRESHOLD is silence (Whisper's own defaults); one above
    # STT_HALLUCINATION_NO_SPEECH_PROB whose text is a phrase Whisper invents on silence is dropped; audio of at most
    # STT_SHORT_AUDIO_SECONDS needs both signals confident.
    stt_no_speech_prob: float = Field(default=0.6, ge=0, le=1)
    stt_logprob_threshold: float = Field(default=-1.0, le=0)
    stt_hallucination_no_speech_prob: float = Field(default=0.6, ge=0, le=1)
    stt_short_audio_seconds: float = Field(default=2.0, ge=0)
    ffmpeg_binary: str = "ffmpeg"
    ffmpeg_timeout_seconds: float = 60.0
    # Target loudness of every voice note (EBU R128 integrated loudness, LUFS), so replies from different TTS
    # backends sound equally loud; 0 switches levelling off (docs/voice.md has its measured cost).
    voice_loudness_lufs: float = -16.0
    # libopus complexity (0-10) of voice replies: the encode is the last step before the upload, and its CPU cost
    # roughly halves from 10 to 5 with no audible loss for speech at voice-note bitrates (docs/performance.md).
    voice_opus_complexity: int = Field(default=5, ge=0, le=10)

    # --- text-to-speech routing (docs/voice.md) ---------------------------------------------------------------
    # Which voice speaks which language: "LANG=BACKEND:VOICE[@MODEL],..." with BACKEND groq, openai or piper, or
    # "LANG=text". Adds to, or overrides per language, what VOICE_REPLY_LANGUAGES + TTS_MODEL/TTS_VOICE/
    # TTS_ARABIC_* give. Checked when an audio worker starts.
    tts_voices: str = ""
    # At most this many chunks of one reply are synthesised at the same time (the shared rate limits still apply).
    tts_concurrency: int = 4
    # Any OpenAI-compatible speech endpoint (POST {base}/audio/speech), e.g. https://api.openai.com/v1.
    openai_tts_base_url: str = ""
    openai_tts_api_key: SecretStr = SecretStr("")
    openai_tts_model: str = "tts-1"
    # wav, or pcm (raw 16-bit mono at OPENAI_TTS_SAMPLE_RATE): lossless, so speech is compressed only once, to Opus.
    openai_tts_response_format: Literal["wav", "pcm"] = "wav"
    openai_tts_sample_rate: int = 24000
    openai_tts_max_chars: int = 300
    openai_tts_timeout_seconds: float = 30.0
    # Requests per minute for the endpoint, shared by every worker like Groq's budgets; 0 = no limit.
    openai_tts_rpm: int = 0
    # Piper (GPL-3.0) runs as its own program; voices are <name>.onnx + <name>.onnx.json in PIPER_VOICES_DIR.
    piper_binary: str = "piper"
    piper_voices_dir: Path = Path("piper-voices")
    # One Piper run per reply by default: loading the engine and the voice costs more than synthesising a sentence.
    piper_max_chars: int = 1000
    piper_timeout_seconds: float = 60.0

    # --- untrusted media: the work budget of each decoder process (ffmpeg for audio, Pillow for images) -----------
    # CPU seconds (RLIMIT_CPU) and address space (RLIMIT_AS, MB) of one child process; Debian's ffmpeg alone maps
    # ~270 MB of libraries. An image child's wall time is bounded at twice its CPU seconds, ffmpeg's by
    # FFMPEG_TIMEOUT_SECONDS.
    media_cpu_seconds: int = 10
    media_memory_mb: int = 512
    # Images with more pixels (read from the header, before decoding) get a polite "too large" reply. A WhatsApp
    # photo has at most ~16 MP; decoding 25 MP RGBA peaks at ~270 MB in the child (docs/performance.md).
    image_max_pixels: int = 25_000_000

    # --- webhook ingress ------------------------------------------------------------------------------------
    # Meta documents payloads up to 3 MB; anything larger is not Meta.
    max_webhook_bytes: int = 3 * 1024 * 1024
    # A webhook body must arrive within this many seconds of its headers (else 408 and the connection is closed):
    # a client dripping a body cannot hold a connection for minutes. Meta sends 3 MB in well under a second.
    webhook_body_timeout_seconds: float = Field(default=10.0, gt=0)
    # Any request (head and body) must be received within this long of the connection opening or of the request's
    # first byte, else the connection is closed (api/http_protocol.py): no slowloris holds a connection for long.
    api_read_timeout_seconds: float = Field(default=15.0, gt=0)
    # uvicorn's `limit_concurrency`: beyond this many open connections (or requests in progress) a request gets
    # 503 and its connection is closed, so a flood of connections cannot exhaust memory or file descriptors.
    api_max_connections: int = Field(default=1000, gt=1)
    # Meta retries for 7 days; keep markers a day longer so a late retry is still recognised.
    dedupe_ttl_seconds: int = 8 * 24 * 3600
    # DANGER: only for local experiments without a Meta app. Disables signature checks.
    dev_insecure_skip_signature: bool = False

    # --- conversation ---------------------------------------------------------------------------------------
    memory_max_messages: int = 20
    memory_ttl_seconds: int = 24 * 3600
    # Messages older than this (Meta's outage backlog) get no AI answer: one short "sorry for the delay" notice per
    # conversation per backlog, and nothing for messages that would not get a reply anyway (see message-types.md).
    stale_message_seconds: int = 3600
    # Burst merging (docs/guarantees.md#bursts): messages of a conversation that arrive within this many seconds of
    # each other get one answer, to the last of them; the first waits at most COALESCE_MAX_WAIT_SECONDS. 0 = off.
    coalesce_window_seconds: float = Field(default=2.5, ge=0)
    coalesce_max_wait_seconds: float = Field(default=8.0, ge=0)
    # While a job that will be answered runs longer than this, the user's message gets a 👀 reaction, taken back
    # when the answer goes out (docs/message-types.md#while-the-bot-works); 0 = off. Not in groups.
    ack_reaction_after_seconds: float = Field(default=4.0, ge=0)

    # --- human handoff (docs/handoff.md) --------------------------------------------------------------------
    # How long the bot stays silent in a conversation a person took over (renewed by each of their messages).
    handoff_pause_minutes: int = Field(default=60, ge=1)
    # Optional: POSTed (HMAC-SHA256 signed with HANDOFF_WEBHOOK_SECRET) when a user asks for a person.
    handoff_webhook_url: str = ""
    handoff_webhook_secret: SecretStr = SecretStr("")
    # Bearer token of the API's /admin/handoff endpoints; empty: the endpoints do not exist.
    admin_token: SecretStr = SecretStr("")

    # --- who is talking: groups, welcome (docs/message-types.md#groups) ---------------------------------------
    # Messages in a WhatsApp group: `off` never answers, `mention` answers only when the bot is addressed (a reply
    # to one of its messages, or text naming BUSINESS_DISPLAY_NAME or @BUSINESS_DISPLAY_PHONE_NUMBER), `all`
    # answers every message. Meta's webhooks carry no mention field, so "addressed" is ours to define.
    group_replies: Literal["off", "mention", "all"] = "mention"
    # The business's display name and number as members write them ("Acme Support", "15550783881"); empty: not
    # used for mentions. The number is matched with or without a leading "+".
    business_display_name: str = ""
    business_display_phone_number: str = ""
    # Sent (as is, not quoting the event) when a user opens the chat for the first time and Meta sends
    # `request_welcome`; empty: no welcome message.
    welcome_message: str = "Hi! I'm an AI assistant. Ask me anything, or send a voice note or a photo."
    # Outside the 24-hour customer service window no free-form reply is sent; the answer is kept this long and sent
    # when the user writes again (docs/message-types.md#the-24-hour-customer-service-window).
    undelivered_ttl_seconds: int = Field(default=7 * 24 * 3600, gt=0)
    # Put before a kept answer when it is finally delivered; `{question}` is the start of the user's message it
    # answers. Empty: a built-in sentence in the conversation's language.
    kept_answer_intro: str = ""
    # An approved template (its name, and its language code) sent instead, once per conversation per day, when a
    # reply falls outside the window; empty: nothing is sent.
    outside_window_template: str = ""
    outside_window_template_language: str = "en_US"

    # --- vision / message types -----------------------------------------------------------------------------
    # WhatsApp images are at most 5 MB; refuse to download more than this (a wrong mime type or a forged payload).
    image_max_download_bytes: int = 8 * 1024 * 1024
    # Groq takes base64 images up to ~4 MB: larger ones are downscaled / re-encoded as JPEG first.
    vision_max_base64_bytes: int = 4 * 1000 * 1000
    # Longer sides are downscaled too: image tokens count against the 8K tokens-per-minute free-tier budget.
    vision_max_image_side: int = 2048
    # Qwen3 takes `none|default`; "" sends nothing. `none` keeps the reasoning out of a short image answer.
    vision_reasoning_effort: str = "none"
    vision_max_completion_tokens: int = 1024
    # Remembered messages sent along with an image (the image itself is never stored).
    vision_history_messages: int = 6

    # --- workers --------------------------------------------------------------------------------------------
    worker_concurrency: int = 4
    task_soft_time_limit: int = 240
    task_time_limit: int = 300
    # Must exceed the hard limit plus the longest countdown we issue (Celery docs, "Using Redis": visibility timeout).
    celery_visibility_timeout: int = 900
    # How long a conversation stays claimed by a job that stopped heart-beating (a SIGKILLed worker).
    conversation_lease_seconds: int = 360
    # How long a message's ledger (shared/ledger.py: its job, stage results, send states; what `loopera trace`
    # shows) is kept after the webhook queued it. It must outlive every run of the job (TASK_DEADLINE_SECONDS plus
    # a lease); it holds the message text, so no longer than operators need to trace.
    message_ledger_ttl_seconds: int = Field(default=2 * 24 * 3600, ge=3600)
    task_deadline_seconds: int = 900

    # Attempts for failures that are not rate-limit deferrals (those only spend the deadline, not attempts).
    task_max_retries: int = 8

    # --- rate limits ----------------------------------------------------------------------------------------
    # Global Groq budgets per model, shared by every worker through Redis (workers/clients/rate_limit.py). Defaults
    # are the free-tier figures of https://console.groq.com/docs/rate-limits; raise them for a paid plan. 0
    # switches a dimension off.
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
    # While another conversation waits for a model, one that has calls in the window gets at most budget / active
    # conversations of it (workers/clients/lua/acquire.lua): one user's flood cannot starve the rest.
    groq_fair_share: bool = True
    # Per user (conversation): at most this many messages that would go to a model per window; the rest are
    # acknowledged and remembered but not answered, and one "please slow down" goes out per window. 0 = off.
    user_messages_per_window: int = Field(default=12, ge=0)
    user_rate_window_seconds: float = Field(default=60.0, gt=0)

    # --- the sandbox: a local stand-in for Meta (docs/sandbox.md) ----------------------------------------------
    # The API and workers run against `loopera sandbox` instead of Meta: the Graph token may then travel over plain
    # http, but only to GRAPH_API_URL and only when that is a loopback address; nothing else is relaxed. Workers
    # start without GROQ_API_KEY and answer every message with what is missing. `make run` sets it by itself when
    # the Meta settings are not all filled in.
    sandbox: bool = False
    # Where `loopera sandbox` serves the chat page, its JSON API and the Graph stand-in.
    sandbox_port: int = 8001

    # --- observability --------------------------------------------------------------------------------------
    log_level: str = "INFO"
    log_json: bool = True

    # --- ops: health checks, metrics, Flower, doctor ---------------------------------------------------------
    # Meta app id: `loopera doctor` calls debug_token with access_token=<META_APP_ID>|<APP_SECRET>.
    meta_app_id: str = ""
    # Which pool `loopera worker` consumes when --pool is not given (one image, one env var per Railway service).
    worker_pool: Literal["text", "audio", "vision", "all"] = "all"
    # Celery execution pool when --pool-impl is not given. Groq and Graph calls wait on the network, so threads
    # serve text/vision with a fraction of prefork's memory (README "Performance": threads x16 gave 3.5x the replies
    # of prefork x4 in a third of the memory). Prefork stays the default: it enforces time limits and isolates
    # ffmpeg-heavy audio jobs; compose and the Railway guide run text and vision on threads.
    worker_pool_impl: Literal["prefork", "threads", "solo"] = "prefork"
    # The worker's consumer loop touches this file on every Celery heartbeat (2 s); `loopera healthcheck worker`
    # fails when it is older than the max age. Cheap, unlike `celery inspect ping` (a broker round trip + ~3 s CPU).
    worker_heartbeat_file: Path = Path(tempfile.gettempdir()) / "loopera-worker.heartbeat"
    worker_heartbeat_max_age_seconds: int = 60
    # Prometheus endpoint of a worker process group (main process serves the prefork children's metrics through
    # a multiprocess directory). 0 = off; compose and Railway set 9100.
    worker_metrics_port: int = 0
    # How often the API refreshes queue depth (LLEN text/audio/vision) for its /metrics.
    queue_depth_refresh_seconds: float = 5.0
    # Flower's basic auth, "user:password" (comma-separated for several users). Required unless dev_flower_no_auth.
    flower_basic_auth: SecretStr = SecretStr("")
    dev_flower_no_auth: bool = False
    # The API publishes a Celery `task-sent` event per dispatched job (it enqueues without Celery, so
    # task_send_sent_event cannot do it), so Flower lists jobs before a worker picks them up.
    announce_task_sent_events: bool = True

    @field_validator("graph_api_url", "groq_base_url", "openai_tts_base_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("redis_ack_replicas", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        # docker compose passes `${REDIS_ACK_REPLICAS:-}` as an empty string: that means "not set".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("redis_sentinels")
    @classmethod
    def _check_sentinels(cls, value: str) -> str:
        parse_sentinels(value)  # raises ValueError (a validation error) on a malformed list
        return value

    @model_validator(mode="after")
    def _ledger_outlives_its_job(self) -> Settings:
        # A job whose ledger expired cannot be loaded, nor its conversation found and released: its mailbox would
        # be handed out again every lease, forever.
        if self.message_ledger_ttl_seconds <= self.task_deadline_seconds + self.conversation_lease_seconds:
            raise ValueError(
                "MESSAGE_LEDGER_TTL_SECONDS must exceed TASK_DEADLINE_SECONDS + CONVERSATION_LEASE_SECONDS"
            )
        return self

    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        """REDIS_SENTINELS as (host, port) pairs; empty without Sentinel."""
        return parse_sentinels(self.redis_sentinels)

    @property
    def ack_replicas(self) -> int:
        """Replicas that must confirm a webhook's jobs before it is acknowledged (0: no WAIT)."""
        if self.redis_ack_replicas is not None:
            return self.redis_ack_replicas
        return 1 if self.redis_sentinels.strip() else 0

    @property
    def graph_base(self) -> str:
        return f"{self.graph_api_url}/{self.graph_api_version}"

    @property
    def voice_reply_language_set(self) -> frozenset[str]:
        return frozenset(code.strip().lower() for code in self.voice_reply_languages.split(",") if code.strip())

    def message_hashing_key(self) -> bytes:
        """The HMAC key of message refs (shared/ledger.py)."""
        return hashing_key(self.message_key_secret.get_secret_value(), self.app_secret.get_secret_value())

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


def parse_sentinels(value: str) -> list[tuple[str, int]]:
    """`"h1:26379, h2:26379"` -> `[("h1", 26379), ("h2", 26379)]`; `[::1]:26379` for IPv6. Raises ValueError."""
    addresses = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"REDIS_SENTINELS entries must be host:port, got {item!r}")
        addresses.append((host.strip("[]"), int(port)))
    return addresses


API_SECRETS = ("verify_token", "phone_number_id")
WORKER_SECRETS = ("whatsapp_token", "phone_number_id", "groq_api_key")
# The settings that say "this runs against Meta"; `make run` falls back to the sandbox when one is missing.
META_SETTINGS = ("whatsapp_token", "app_secret", "verify_token", "phone_number_id")
# Tokens the sandbox generates start with this; the sandbox refuses any other non-empty WHATSAPP_TOKEN, so a real
# Meta token never travels to the loopback stand-in over plain http.
SANDBOX_TOKEN_PREFIX = "sandbox-"  # noqa: S105 (a prefix, not a secret)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def worker_secrets(settings: Settings) -> tuple[str, ...]:
    """What a worker needs to start: in the sandbox a missing GROQ_API_KEY is answered in the chat instead."""
    if settings.sandbox:
        return tuple(name for name in WORKER_SECRETS if name != "groq_api_key")
    return WORKER_SECRETS


def is_sandbox_token(value: SecretStr | str) -> bool:
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    return raw.startswith(SANDBOX_TOKEN_PREFIX)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
