"""What a stand-in received, as tests and the sandbox look at it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Recorded:
    """One request the stand-in received (the token is kept as sent, for tests that check where it went)."""

    method: str
    path: str
    authorization: str | None
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    file: bytes | None = None
    file_name: str | None = None
    file_type: str | None = None
    # For a message Graph accepted: the id it answered with (`messages[0].id`).
    meta_id: str | None = None
