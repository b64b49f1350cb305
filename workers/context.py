"""The collaborators a pipeline works with (Graph, Groq, Redis state), built once per worker process.

Pipelines receive a `WorkerContext` as an argument; the runtime owns the one instance per process
(`workers.runtime.process`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from shared.config import Settings, worker_secrets
from shared.redis_client import sync_redis
from workers.clients.graph import GraphClient
from workers.clients.groq import GroqClient
from workers.clients.openai_speech import OpenAISpeechClient
from workers.clients.piper import PiperEngine
from workers.clients.rate_limit import RateLimiter
from workers.delivery.attempts import JobAttempts
from workers.delivery.burst import BURST_PEEK, BurstCloser
from workers.delivery.dead_letters import DeadLetters
from workers.delivery.lease import ConversationLeases
from workers.delivery.ledger_book import LedgerBook
from workers.delivery.memory import ConversationMemory
from workers.delivery.outgoing import OutgoingMessages


@dataclass
class WorkerContext:
    settings: Settings
    redis: redis.Redis
    graph: GraphClient
    groq: GroqClient
    memory: ConversationMemory
    leases: ConversationLeases
    dead_letters: DeadLetters
    attempts: JobAttempts
    system_prompt: str
    # The shared Groq budgets (GroqClient already holds it; here for pipelines that need to look, e.g. metrics).
    limiter: RateLimiter | None = None
    # The ledgers of the jobs running in this process (workers/delivery/ledger.py).
    ledgers: LedgerBook = field(init=False)
    # Closes bursts of messages (workers/delivery/burst.py).
    bursts: BurstCloser = field(init=False)
    # Text-to-speech besides Groq: an OpenAI-compatible endpoint (None unless OPENAI_TTS_BASE_URL is set) and
    # local Piper voices (a subprocess per request; nothing runs until a Piper route speaks).
    openai_speech: OpenAISpeechClient | None = None
    piper: PiperEngine | None = None

    @classmethod
    def build(cls, settings: Settings) -> WorkerContext:
        settings.require(worker_secrets(settings), "The worker")
        client = sync_redis(settings)
        api_key = settings.groq_api_key.get_secret_value()
        limiter = RateLimiter(client, settings, api_key)
        return cls(
            settings=settings,
            redis=client,
            graph=GraphClient(
                settings.graph_api_url,
                settings.graph_api_version,
                settings.whatsapp_token.get_secret_value(),
                settings.phone_number_id,
                timeout=settings.graph_timeout_seconds,
                sandbox=settings.sandbox,
            ),
            groq=GroqClient(api_key, settings.groq_base_url, settings.groq_timeout_seconds, limiter=limiter),
            memory=ConversationMemory(client, settings.memory_max_messages, settings.memory_ttl_seconds),
            leases=ConversationLeases(client, settings.conversation_lease_seconds),
            dead_letters=DeadLetters(client),
            attempts=JobAttempts(client),
            system_prompt=settings.resolved_system_prompt(),
            limiter=limiter,
            openai_speech=OpenAISpeechClient(
                settings.openai_tts_base_url,
                settings.openai_tts_api_key.get_secret_value(),
                settings.openai_tts_timeout_seconds,
                limiter=limiter,
            )
            if settings.openai_tts_base_url
            else None,
            piper=PiperEngine(settings.piper_binary, settings.piper_voices_dir, settings.piper_timeout_seconds),
        )

    def __post_init__(self) -> None:
        settings = self.settings
        self.ledgers = LedgerBook(
            self.redis,
            settings.conversation_lease_seconds,
            settings.memory_max_messages,
            settings.memory_ttl_seconds,
            settings.user_messages_per_window,
            settings.user_rate_window_seconds,
            confirm_wait_seconds=settings.send_confirm_wait_seconds,
            burst_peek=BURST_PEEK if settings.coalesce_window_seconds > 0 else 0,
            outgoing=OutgoingMessages(self.redis, settings.message_hashing_key(), settings.message_ledger_ttl_seconds),
        )
        self.bursts = BurstCloser(self.redis, settings.conversation_lease_seconds)

    def close(self) -> None:
        self.graph.close()
        self.groq.close()
        if self.openai_speech is not None:
            self.openai_speech.close()
        self.redis.close()
