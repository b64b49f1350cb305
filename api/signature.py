"""Meta's X-Hub-Signature-256: HMAC-SHA256 of the raw request body, keyed with the app secret."""

from __future__ import annotations

import hashlib
import hmac
from enum import Enum

_PREFIX = "sha256="


class SignatureCheck(Enum):
    OK = "ok"
    MISSING = "missing"
    MISMATCH = "mismatch"


def sign(body: bytes, secret: bytes) -> str:
    return _PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, header: str | None, secret: bytes) -> SignatureCheck:
    """Constant-time check over the raw bytes.

    Hash what arrived, never re-serialised JSON: Meta escapes non-ASCII characters, so re-encoding changes the
    bytes and breaks the match for accents, Arabic script and emoji.
    """
    if not header:
        return SignatureCheck.MISSING
    # An empty secret verifies against an empty key, which anyone can forge: the app refuses to start without one.
    if not secret:
        return SignatureCheck.MISMATCH
    expected = sign(body, secret)
    # compare_digest on equal-type str is constant-time for ASCII; a non-ASCII header is simply a mismatch.
    if not header.isascii():
        return SignatureCheck.MISMATCH
    return SignatureCheck.OK if hmac.compare_digest(header.strip().lower(), expected) else SignatureCheck.MISMATCH
