"""Where dead letters live: one Redis list, newest first, written by the workers (a job that finally failed,
workers/delivery/dead_letters.py) and by the API (a reply Meta reported as permanently undeliverable,
shared/scripts/record_status.lua). `loopera dlq list` reads it."""

from __future__ import annotations

DLQ_KEY = "lp:dlq"
DLQ_MAX = 10_000
# The `task` of a dead letter written for a failed delivery status: there is no job to replay.
STATUS_TASK = "whatsapp.delivery_status"
