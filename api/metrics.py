"""Prometheus metrics of the API process (served at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

WEBHOOKS = Counter(
    "loopera_webhooks_total",
    "Webhook POSTs by outcome",
    ["outcome"],  # ok, duplicate, bad_signature, missing_signature, ignored, invalid, too_large, unavailable
)
MESSAGES = Counter("loopera_messages_total", "Inbound messages by outcome", ["outcome"])  # queued, duplicate
STATUSES = Counter("loopera_statuses_total", "Delivery status callbacks", ["failed"])
ENQUEUE_SECONDS = Histogram(
    "loopera_enqueue_seconds",
    "Time to put a webhook's jobs into Redis",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)

# Resolved once: `.labels()` costs a lock and a dict lookup per call, on every webhook.
WEBHOOK_OUTCOMES = {outcome: WEBHOOKS.labels(outcome) for outcome in ("ok", "duplicate", "ignored")}
MESSAGES_QUEUED = MESSAGES.labels("queued")
MESSAGES_DUPLICATE = MESSAGES.labels("duplicate")
STATUSES_DELIVERED = STATUSES.labels("false")
STATUSES_FAILED = STATUSES.labels("true")
