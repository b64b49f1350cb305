"""Per-process collaborators: built once when a worker process starts, reused by every job, closed at exit."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import redis

from shared.config import WORKER_SECRETS, Settings, get_settings
from shared.memory import ConversationMemory
from shared.redis_client import sync_redis
from workers.conversation_lease import ConversationLeases
from workers.dead_letters import DeadLetters
from workers.graph_client import GraphClient
from workers.groq_client import GroqClient
from workers.outbox import Outbox
from workers.rate_limit import RateLimiter


@dataclass
class WorkerContext:
    settings: Settings
    redis: redis.Redis
    graph: GraphClient
    groq: GroqClient
    memory: ConversationMemory
    outbox: Outbox
    leases: ConversationLeases
    dead_letters: DeadLetters
    system_prompt: str
    # The shared Groq budgets (GroqClient already holds it; here for pipelines that need to look, e.g. metrics).
    limiter: RateLimiter | None = None

    @classmethod
    def build(cls, settings: Settings) -> WorkerContext:
        settings.require(WORKER_SECRETS, "The worker")
        client = sync_redis(settings.redis_url)
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
            ),
            groq=GroqClient(api_key, settings.groq_base_url, settings.groq_timeout_seconds, limiter=limiter),
            memory=ConversationMemory(client, settings.memory_max_messages, settings.memory_ttl_seconds),
            outbox=Outbox(client, settings.send_marker_ttl_seconds),
            leases=ConversationLeases(client, settings.conversation_lease_seconds),
            dead_letters=DeadLetters(client),
            system_prompt=settings.resolved_system_prompt(),
            limiter=limiter,
        )

    def close(self) -> None:
        self.graph.close()
        self.groq.close()
        self.redis.close()


_lock = threading.Lock()
_context: WorkerContext | None = None


def get_context() -> WorkerContext:
    """The process's context, built on first use (prefork children build their own after the fork)."""
    global _context  # noqa: PLW0603 - one context per process is the point
    with _lock:
        if _context is None:
            _context = WorkerContext.build(get_settings())
        return _context


def close_context() -> None:
    global _context  # noqa: PLW0603
    with _lock:
        if _context is not None:
            _context.close()
            _context = None
