"""Meta's customer service window: free-form messages only within 24 hours of the user's last message
(https://developers.facebook.com/docs/whatsapp/cloud-api/guides/send-messages#customer-service-windows); outside
it Meta refuses them (error 131047) and only an approved template may be sent.

The window is measured from the newest user message time we know for the conversation: this message's own
`timestamp` (when the user sent it, not when Meta delivered it: a backlog delivered late does not reopen it) and
the newest one a worker has seen before, kept in the conversation's state hash (`lp:conv:<conversation>`, field
`window_until`, epoch ms; shared/ledger.py), which the ledger's send gate reads too. A conversation's jobs run one
at a time (its mailbox), so the read-then-write needs no script. The pipeline checks first (to keep the answer
and send a template); the send gate checks again atomically with each send.
"""

from __future__ import annotations

import time

import redis

from shared.jobs import InboundJob
from shared.ledger import CUSTOMER_SERVICE_WINDOW_SECONDS as WINDOW_SECONDS
from shared.ledger import conversation_state_key

# The state outlives the window it records by a day; a person who writes again renews it.
STATE_TTL_SECONDS = 2 * WINDOW_SECONDS


def user_sent_at(job: InboundJob) -> float:
    """When the user sent the message (Meta's `timestamp`, unix seconds); our receipt when it is missing."""
    try:
        return float(str(job.message["timestamp"]))
    except (KeyError, TypeError, ValueError):
        return job.received_at


def window_until_ms(client: redis.Redis, job: InboundJob) -> int:
    """End of the window (epoch ms) from the newest user message known, this one included; records it."""
    key = conversation_state_key(job.conversation)
    own = int((user_sent_at(job) + WINDOW_SECONDS) * 1000)
    stored, opted_out = client.hmget(key, ["window_until", "opted_out"])
    until = max(own, int(stored) if stored else 0)
    if until != (int(stored) if stored else None):
        pipe = client.pipeline(transaction=False)
        pipe.hset(key, "window_until", until)
        if opted_out is None:  # an opt-out lives until the user says start: never give its hash a lifetime
            pipe.expire(key, STATE_TTL_SECONDS)
        pipe.execute()
    return until


def window_open(client: redis.Redis, job: InboundJob) -> bool:
    """Whether a free-form reply may go out now. This message's own time decides without Redis when it is recent
    (the newest user message known is at least as new; the common case, no round trip); an older one (a backlog)
    looks for a newer message recorded in the conversation's state."""
    now_ms = time.time() * 1000
    if now_ms < (user_sent_at(job) + WINDOW_SECONDS) * 1000:
        return True
    return now_ms < window_until_ms(client, job)
