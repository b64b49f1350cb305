"""Global Groq rate limits per model, shared by every worker process and replica through Redis.

Groq limits an organisation per model (requests per minute, tokens per minute, audio seconds per hour; see
https://console.groq.com/docs/rate-limits). Celery's own `rate_limit` is per worker instance, so the budget lives
in Redis and every call takes from it atomically in one Lua script.

Algorithm: a rolling-window log per (model, dimension): a sorted set of the calls admitted in the last window,
each member carrying its cost. A call is admitted only if the costs inside the window plus its own stay within the
limit, so no window of that length ever holds more than the limit (a GCRA / token bucket with a burst of N lets
up to 2N-1 through in one window, which a provider enforcing a rolling window answers with 429). The price is a
set of at most "limit" entries per key, which at Groq's figures is tiny. Time is Redis' clock (`TIME`), so
workers with skewed clocks agree.

A call over budget raises `RateLimited` with the wait until the oldest entry leaves the window: the job runner
defers the job with that countdown instead of sleeping in a worker slot. Calls made for a conversation share the
budget fairly: while another conversation waits for the model, one that already has calls in the window is held to
budget / active conversations (`shared/scripts/rate_limit_acquire.lua`), so a flood from one user cannot take
what others wait for.

A 429 sets a shared cooldown key per model, so every worker honours Groq's `retry-after`, not only the one that
was refused.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from shared.config import Settings
from shared.redis_scripts import ScriptName, ScriptResult, lua_source
from workers.errors import WaitError

RATE_PREFIX = "lp:rl:"

# A conversation refused a call keeps counting as waiting this long after the wait it was given (its deferred job
# must be picked up again), so the budget it waits for is not taken by a conversation that has had its share.
FAIR_SHARE_GRACE_SECONDS = 10.0


class RateLimited(WaitError):
    """Over budget: come back after `retry_after` seconds. A deferral, not a failure: it does not count as a retry
    attempt (the job's deadline still applies)."""

    def __init__(
        self, model: str, dimension: str, retry_after: float, reason: str = "groq_rate_budget", fair: bool = False
    ) -> None:
        reason = "groq_fair_share" if fair else reason
        super().__init__(reason, f"model={model} {dimension}", retry_after=retry_after)
        self.dimension = dimension
        # True: the budget had room, but this conversation has had its share while others wait for theirs.
        self.fair = fair


@dataclass(frozen=True, slots=True)
class Limit:
    dimension: str  # "requests", "tokens", "audio_seconds"
    limit: int
    window_seconds: float


@dataclass(frozen=True, slots=True)
class Reservation:
    model: str
    member: str
    costs: dict[str, int]


class RateLimiter:
    """Budgets per Groq call kind, built from the "rate limits" section of the settings."""

    def __init__(self, client: redis.Redis, settings: Settings, api_key: str = "") -> None:
        self._redis = client
        self.enabled = settings.rate_limits_enabled
        self.fair_share = settings.groq_fair_share
        # Groq limits per organisation; the key hash keeps two deployments with different keys apart.
        self._scope = hashlib.sha256(api_key.encode()).hexdigest()[:8]
        # shared/scripts/rate_limit_*.lua; each call below names the script's KEYS and ARGV.
        self._acquire = client.register_script(lua_source(ScriptName.RATE_LIMIT_ACQUIRE))
        self._settle = client.register_script(lua_source(ScriptName.RATE_LIMIT_SETTLE))
        self._cool_down = client.register_script(lua_source(ScriptName.RATE_LIMIT_COOL_DOWN))
        minute, hour = settings.rate_limit_window_seconds, settings.rate_limit_audio_window_seconds
        self._vision_model = settings.vision_model
        self._limits: dict[str, tuple[Limit, ...]] = {
            "chat": _limits(("requests", settings.chat_rpm, minute), ("tokens", settings.chat_tpm, minute)),
            "vision": _limits(("requests", settings.vision_rpm, minute), ("tokens", settings.vision_tpm, minute)),
            "transcription": _limits(
                ("requests", settings.stt_rpm, minute), ("audio_seconds", settings.stt_audio_seconds_per_hour, hour)
            ),
            "speech": _limits(("requests", settings.tts_rpm, minute), ("tokens", settings.tts_tpm, minute)),
            # An OpenAI-compatible speech endpoint (workers/clients/openai_speech.py): requests only.
            "openai_speech": _limits(("requests", settings.openai_tts_rpm, minute)),
        }

    def key(self, model: str, dimension: str) -> str:
        return f"{RATE_PREFIX}{self._scope}:{model}:{dimension}"

    def cooldown_key(self, model: str) -> str:
        return f"{RATE_PREFIX}{self._scope}:{model}:cooldown"

    def waiting_key(self, model: str) -> str:
        return f"{RATE_PREFIX}{self._scope}:{model}:waiting"

    @staticmethod
    def party(conversation: str) -> str:
        """A conversation's name in the limiter's keys: a hash, since conversation ids carry phone numbers."""
        return hashlib.sha256(conversation.encode()).hexdigest()[:16] if conversation else ""

    def kind_for_chat(self, model: str) -> str:
        return "vision" if model == self._vision_model else "chat"

    def acquire(self, kind: str, model: str, conversation: str = "", **costs: float) -> Reservation:
        """Take one call (and its costs, e.g. tokens=900) from the model's budget, or raise RateLimited.

        `conversation` (who the call is for) turns on fair sharing: while another conversation waits for this model,
        one that already has calls in the window gets at most budget / active conversations
        (shared/scripts/rate_limit_acquire.lua)."""
        limits = self._limits[kind] if self.enabled else ()
        charged = {"requests": 1} | {name: max(1, math.ceil(value)) for name, value in costs.items()}
        party = self.party(conversation)
        member = f"{uuid.uuid4().hex}:{party}"
        active = [limit for limit in limits if limit.limit > 0 and limit.dimension in charged]
        keys = [self.cooldown_key(model), self.waiting_key(model)] + [
            self.key(model, limit.dimension) for limit in active
        ]
        args: list[str | int] = [member, party, int(FAIR_SHARE_GRACE_SECONDS * 1_000_000), int(self.fair_share)]
        for limit in active:
            args += [limit.limit, int(limit.window_seconds * 1_000_000), charged[limit.dimension]]
        # KEYS: cooldown, waiting set, one sorted set per dimension; ARGV: member, conversation, grace_us, fair on,
        # then (limit, window_us, cost) per dimension (shared/scripts/rate_limit_acquire.lua).
        verdict, wait_us, which, fair = (int(v) for v in self._acquire(keys=keys, args=args))
        if ScriptResult(verdict) is ScriptResult.OVER_BUDGET:
            dimension = "cooldown" if which == 0 else active[which - 1].dimension
            raise RateLimited(model, dimension, wait_us / 1_000_000, fair=bool(fair))
        return Reservation(
            model, member, {limit.dimension: min(charged[limit.dimension], limit.limit) for limit in active}
        )

    def settle(self, reservation: Reservation, dimension: str, actual: float) -> None:
        """Correct an estimate once the real cost is known, so later calls see the true budget."""
        estimated = reservation.costs.get(dimension)
        actual_cost = max(1, math.ceil(actual))
        if estimated is None or estimated == actual_cost:
            return
        # KEYS: the dimension set; ARGV: member, estimated, actual cost -> SETTLED or NOT_FOUND (left the window).
        self._settle(keys=[self.key(reservation.model, dimension)], args=[reservation.member, estimated, actual_cost])

    def cool_down(self, model: str, seconds: float) -> None:
        """Groq said 429 + retry-after: nobody calls this model before then."""
        if seconds > 0:
            # KEYS: cooldown; ARGV: ms -> COOLDOWN_SET or COOLDOWN_KEPT (a longer one runs).
            self._cool_down(keys=[self.cooldown_key(model)], args=[max(1, int(seconds * 1000))])


def _limits(*specs: tuple[str, int, float]) -> tuple[Limit, ...]:
    return tuple(Limit(dimension, limit, window) for dimension, limit, window in specs)


def sequence_chars(contents: Sequence[object]) -> int:
    """Characters of text in chat messages (string contents and the text parts of multimodal contents)."""
    total = 0
    for content in contents:
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            total += sum(len(str(part.get("text", ""))) for part in content if isinstance(part, dict))
    return total
