"""Answers the user did not get, kept for their next message (read by workers/delivery/undelivered.py).

Two ways in, one store: the worker keeps an answer the 24-hour customer service window stopped before it was sent
(workers/pipelines/window.py), and the API keeps one Meta accepted but then reported `failed` with a window or
undeliverable error (shared/scripts/record_status.lua). `lp:undelivered:<conversation>` is a list of JSON
`{"text", "asked", "at", "ref"}` (newest last, at most KEPT_ANSWERS), expiring UNDELIVERED_TTL_SECONDS after the
last one was kept; `asked` is the start of the user's message it answered, `ref` its ledger's ref (one entry per
answer, however many of its parts failed).
"""

from __future__ import annotations

UNDELIVERED_PREFIX = "lp:undelivered:"
# Set in the conversation's state hash while answers are kept, so the job's claim (which reads that hash anyway)
# tells the worker whether to look: no round trip per message for a store that is almost always empty.
KEPT_FIELD = "kept_answers"
KEPT_ANSWERS = 5  # a person away for days needs the last few answers, not a transcript
# How much of the user's message is kept to remind them what the answer was about.
ASKED_CHARS = 120

# Reply kinds (the part name before ":") worth keeping: the model's answers and fixed answers to the user's message,
# not notices about timing, apologies or templates.
KEPT_KINDS = ("text", "notice", "welcome", "voice")

# Failed-status codes that mean "not now" rather than "never": the user can get the answer once they write again.
# 131047: more than 24 hours since the customer last replied (the customer service window closed);
# 131026: message undeliverable (the receiver could not take it then: an old app, terms not accepted, ...).
# https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes
KEEP_ERROR_CODES = (131047, 131026)


def undelivered_key(conversation: str) -> str:
    return UNDELIVERED_PREFIX + conversation
