"""`biz_opaque_callback_data`: what every reply part carries so that Meta's status webhooks name its send record.

Meta echoes a send's `biz_opaque_callback_data` (at most 512 characters) in that message's status webhooks
(`sent`, `delivered`, `read`, `failed`): https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages
(parameter `biz_opaque_callback_data`) and
https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components#statuses-object.

Ours is `lp1:<ref>:<part>`: the message's ref (a keyed hash of the user's message id, shared/ledger.py; a wamid
encodes the sender's phone number, the ref does not) and the reply part's name in its ledger (`text:0`, `voice`,
...). Nothing personal: the API records the status in that ledger without any lookup.
"""

from __future__ import annotations

import re

PREFIX = "lp1:"
# Meta's limit on the field (the messages reference above).
MAX_LENGTH = 512
_DATA = re.compile(r"lp1:([0-9a-f]{32}):([a-z_]{1,32}(?::[0-9]{1,4}){0,2})")


def encode(ref: str, part: str) -> str | None:
    """The callback data naming part `part` of the reply to message `ref`; None when `ref` is not a message ref
    (a ledger keyed by a job id, for a job queued whole by an older API) or `part` not a part name."""
    data = f"{PREFIX}{ref}:{part}"
    return data if _DATA.fullmatch(data) else None


def decode(data: object) -> tuple[str, str] | None:
    """(ref, part) of our callback data; None for anything else (another tool's data, a malformed string)."""
    if not isinstance(data, str) or len(data) > MAX_LENGTH:
        return None
    match = _DATA.fullmatch(data)
    return (match[1], match[2]) if match else None
