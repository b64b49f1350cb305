"""Prometheus metrics of the API process (served at /metrics)."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Histogram

WEBHOOKS = Counter(
    "loopera_webhooks_total",
    "Webhook POSTs by outcome",
    # ok, duplicate, bad_signature, missing_signature, ignored, invalid, too_large, body_timeout, unavailable, failed
    ["outcome"],
)
ITEMS_SKIPPED = Counter(
    "loopera_webhook_items_skipped_total",
    "Malformed items of signed webhooks, skipped (the rest of the batch is queued)",
    ["item", "reason"],  # item: entry, change, messages, statuses; reason: a fixed code (api/webhook_payload.py)
)
FAILURES = Counter(
    "loopera_webhook_failures_total",
    "Unforeseen errors on the ack path, answered 503 so Meta redelivers",
    ["stage"],  # item: one item of a body (the others were queued), request: the request as a whole
)
MESSAGES = Counter("loopera_messages_total", "Inbound messages by outcome", ["outcome"])  # queued, duplicate
STATUSES = Counter(
    "loopera_statuses_total",
    "Meta's status webhooks of the business's messages: sent, delivered, read, played, failed (by error code), other",
    ["status", "code"],  # code: Meta's error code of a failed status, "" otherwise
)
PREFERENCES = Counter(
    "loopera_user_preferences_total",
    "Marketing-preference updates recorded (user_preferences webhooks)",
    ["value"],  # stop, resume, signup, or "other" for a value Meta adds later
)
DELIVERED_SECONDS = Histogram(
    "loopera_reply_delivered_seconds",
    "From the webhook's receipt of a user's message to Meta's first `delivered` status of its reply",
    buckets=(0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60, 120, 300, 900),
)
ENQUEUE_SECONDS = Histogram(
    "loopera_enqueue_seconds",
    "Time to put a webhook's jobs into Redis",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)

# Resolved once: `.labels()` costs a lock and a dict lookup per call, on every webhook.
_STATUS_CHILDREN: dict[tuple[str, str], Any] = {}


def count_status(status: str, code: str) -> None:
    """`loopera_statuses_total{status,code}` += 1, the labelled child resolved once per pair (about three status
    webhooks arrive per reply: resolving it per call cost about 4 % of a status-only ack in bench/ack_path.py)."""
    child = _STATUS_CHILDREN.get((status, code))
    if child is None:
        child = _STATUS_CHILDREN[(status, code)] = STATUSES.labels(status, code)
    child.inc()


WEBHOOK_OUTCOMES = {outcome: WEBHOOKS.labels(outcome) for outcome in ("ok", "duplicate", "ignored")}
MESSAGES_QUEUED = MESSAGES.labels("queued")
MESSAGES_DUPLICATE = MESSAGES.labels("duplicate")
