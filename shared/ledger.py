"""One ledger per inbound message: a Redis hash holding everything a job knows about that message.

The API's INGEST script writes it in the same atomic step as the dedupe marker and the mailbox entry
(`shared/mailbox.py`); the Celery task's only argument is its **ref** (a keyed hash of the message id), so no
framework log line and no dashboard can show a phone number, a name or a message text. The worker reads and
writes it through `workers.delivery.ledger.MessageLedger` (scripts: `shared/scripts/ledger_*.lua`); `loopera trace`
reads it for operators.

Layout (`lp:msg:<ref>`, one key, one TTL: MESSAGE_LEDGER_TTL_SECONDS):

    job                  the job (shared.jobs.InboundJob as JSON: Meta's message object, who to answer)
    conv, task           the conversation and the Celery task id (the claim script needs both)
    received_ms          when the webhook queued it; `queued` = 2 handed to its queue at once, 1 behind an earlier
                         message of the same conversation
    claim, claimed_ms, first_claimed_ms, runs
                         the claim token of the copy running it (the send gate refuses any other copy)
    attempts             failed attempts (rate-limit deferrals do not count; a copy lost with its pool process
                         counts, written by Celery's parent process: workers/delivery/attempts.py)
    stage:<name>         a stage's result as JSON `{"v": value, "ms": duration, "at": epoch ms}`;
    stage:<name>:error   the error type of its last failed computation
    send:<part>          `sending` (with `:until` ms), `done` (with `:meta` Meta's message id and `:at`), or `blocked`
                         (with `:gate`); one per reply part (`text:0`, `text:1`, `apology:0`, `voice`, ...)
    memory               epoch ms when the turn was written to the conversation's memory (written once)
    flag:cancelled, flag:superseded, flag:merged
                         set from outside (a revoke, an edit, a burst merge): the send gates then refuse every part;
                         `flag:merged` holds the ref of the burst's last message, which answers this one (with
                         `merged_ms`; shared/scripts/burst_close.lua)
    burst, burst_closed_ms
                         the last message of a burst: the members' refs in arrival order (JSON), itself included
    amend, amend_of      an edit's or revoke's decision (`instead`, `cancelled`, `after`: shared/amendments.py) and
                         the ref of the message it changes; `superseded_by` on that message: the edit answering
                         in its place (shared/scripts/ledger_amend.lua)
    feedback:<part>      the user's reaction to that reply part (with `:at`), workers/pipelines/feedback.py
    outcome              how the last run ended when it did not simply finish (failed, retrying, deferred, ...);
                         cleared when a new run claims the message

The conversation's state (`lp:conv:<conversation>`, a small hash) holds what the send gates read besides the
message's own flags: `paused_until` (epoch ms, a human took over), `opted_out`, `window_until` (epoch ms, the end of
the customer service window when a later message extended it; see
https://developers.facebook.com/docs/whatsapp/cloud-api/guides/send-messages#customer-service-windows).
Large blobs (a voice reply's chunk WAVs and note) stay in their own short-TTL keys (`workers/voice/cache.py`).
"""

from __future__ import annotations

import hashlib
import hmac

LEDGER_PREFIX = "lp:msg:"
# The bot's sent messages by Meta's id (keyed hash of the wamid) -> "<ledger ref> <part>": workers/delivery/outgoing.py
# writes them with each send, the API's status script for a send whose answer was lost (record_status.lua).
OUTGOING_PREFIX = "lp:out:"
CONVERSATION_STATE_PREFIX = "lp:conv:"
# Meta accepts free-form replies for 24 hours after the user's last message.
CUSTOMER_SERVICE_WINDOW_SECONDS = 24 * 3600
# Fields the API (or a later feature) sets to stop a message's reply, checked by every part's send.
MESSAGE_FLAGS = ("cancelled", "superseded", "merged")
# The ledger fields of a message the user took back before its answer: a revoke (`flag:cancelled`) or an edit
# (`flag:superseded`), set by shared/scripts/ledger_amend.lua.
WITHDRAWN_FIELDS = ("flag:superseded", "flag:cancelled")

# Used only when neither MESSAGE_KEY_SECRET nor APP_SECRET is set (local development without a Meta app).
DEVELOPMENT_MESSAGE_KEY = b"loopera-development-only"


def hashing_key(message_key_secret: str, app_secret: str) -> bytes:
    """The HMAC key for message refs: MESSAGE_KEY_SECRET, else derived from APP_SECRET (both sides have it: the API
    verifies signatures with it, and `loopera trace` runs with the API's settings). Changing it changes every ref:
    a redelivery of a message received before the change is then not recognised as a duplicate."""
    secret = message_key_secret or app_secret
    if not secret:
        return DEVELOPMENT_MESSAGE_KEY
    return hashlib.sha256(b"loopera-message-ref\x00" + secret.encode()).digest()


def message_ref(message_id: str, key: bytes) -> str:
    """A message's ref: HMAC-SHA256 of its id (a wamid encodes the sender's phone number), 32 hex characters.
    Used in Redis keys, as the task argument and in logs instead of the id."""
    return hmac.new(key, message_id.encode(), hashlib.sha256).hexdigest()[:32]


def outgoing_key(wamid: str, key: bytes) -> str:
    """Where the bot's message `wamid` is recorded as a reply part (see OUTGOING_PREFIX)."""
    return OUTGOING_PREFIX + message_ref(wamid, key)


def ledger_key(ref: str) -> str:
    return LEDGER_PREFIX + ref


def conversation_state_key(conversation: str) -> str:
    return CONVERSATION_STATE_PREFIX + conversation


def as_text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def decode_fields(flat: list[bytes]) -> dict[str, str]:
    """A Lua `HGETALL` reply (field, value, field, value, ...) as a dict of strings."""
    return {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat) - 1, 2)}
