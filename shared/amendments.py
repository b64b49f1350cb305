"""Edits and deletions of earlier messages (Meta's `edit` and `revoke` message types), shared by the API, which
decides them against the original's send gate (`shared/scripts/ledger_amend.lua`), and the workers, which answer
them (`workers/pipelines/amendments.py`).

Shapes (https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/reference/messages):
`{"type": "edit", "edit": {"original_message_id": "<wamid>", "message": {<the new message object>}}}` and
`{"type": "revoke", "revoke": {"original_message_id": "<wamid>"}}`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

AMENDING_TYPES = frozenset({"edit", "revoke"})


class Amendment(StrEnum):
    """What the API decided for an edit or revoke (the ledger's `amend` field)."""

    INSTEAD = "instead"  # an edit arrived before the original's answer went out: the edit is answered instead
    CANCELLED = "cancelled"  # a revoke arrived before the original's answer went out: nothing is answered
    AFTER = "after"  # the original was answered (or is unknown): a correction, or its turn leaves memory


def amended_message_id(message: dict[str, Any]) -> str | None:
    """The id of the message an `edit` or `revoke` changes; None for any other message or a malformed one."""
    kind = message.get("type")
    if kind not in AMENDING_TYPES:
        return None
    body = message.get(str(kind))
    original = body.get("original_message_id") if isinstance(body, dict) else None
    return original if isinstance(original, str) and original else None


def edited_message(message: dict[str, Any]) -> dict[str, Any] | None:
    """The new message object an `edit` carries (e.g. `{"type": "text", "text": {"body": "..."}}`), or None."""
    body = message.get("edit")
    new = body.get("message") if isinstance(body, dict) else None
    return new if isinstance(new, dict) else None
