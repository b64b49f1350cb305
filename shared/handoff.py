"""A conversation paused for a person: `paused_until` (epoch ms) in the conversation's state hash (shared/ledger.py).

While it lies in the future, the send gate (`shared/scripts/ledger_send.lua`) refuses every reply of that
conversation, including one already being computed, and the workers store the user's messages without calling a
model (workers/pipelines/controls.py). It ends by itself (HANDOFF_PAUSE_MINUTES after the last pause or human
message) or by `resume`. Used by the workers (the user asks for a person), the API (a person's reply from the
WhatsApp Business app) and `loopera handoff`. See docs/handoff.md.
"""

from __future__ import annotations

import time

import redis

from shared.ledger import CONVERSATION_STATE_PREFIX, conversation_state_key

PAUSED_FIELD = "paused_until"
# The webhook field Meta sends a person's WhatsApp Business app messages in (coexistence numbers), and the job type
# the API gives each echo: https://developers.facebook.com/docs/whatsapp/embedded-signup/custom-flows/
# onboarding-business-app-users#smb_message_echoes
ECHOES_FIELD = "smb_message_echoes"
ECHO_MESSAGE_TYPE = "smb_echo"


def now_ms() -> int:
    return int(time.time() * 1000)


def pause(client: redis.Redis, conversation: str, minutes: int) -> int:
    """Pause `conversation` for `minutes` from now (a later pause renews it). Returns the end, epoch ms."""
    until = now_ms() + minutes * 60_000
    client.hset(conversation_state_key(conversation), PAUSED_FIELD, until)
    return until


def resume(client: redis.Redis, conversation: str) -> bool:
    """End a pause now. Returns False when the conversation was not paused."""
    until = client.hget(conversation_state_key(conversation), PAUSED_FIELD)
    client.hdel(conversation_state_key(conversation), PAUSED_FIELD)
    return until is not None and int(until) > now_ms()


def paused_until(client: redis.Redis, conversation: str) -> int | None:
    """The end of the conversation's pause (epoch ms), or None when it is not paused."""
    until = client.hget(conversation_state_key(conversation), PAUSED_FIELD)
    return int(until) if until is not None and int(until) > now_ms() else None


def paused_conversations(client: redis.Redis) -> dict[str, int]:
    """Every paused conversation -> the end of its pause (epoch ms). A SCAN of the conversation states: for
    operators, not a hot path."""
    now, found = now_ms(), {}
    for key in client.scan_iter(match=CONVERSATION_STATE_PREFIX + "*", count=1000):
        until = client.hget(key, PAUSED_FIELD)
        if until is not None and int(until) > now:
            name = key.decode() if isinstance(key, bytes) else key
            found[name.removeprefix(CONVERSATION_STATE_PREFIX)] = int(until)
    return found
