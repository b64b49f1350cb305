from __future__ import annotations

import pytest

from api.signature import SignatureCheck, sign, verify_signature

# Public test vector from pywa's tests (that app secret was rotated long ago).
VECTOR_SECRET = b"1222e786b144d0e85b9f365372d93676"
VECTOR_BODY = (
    b'{"object":"whatsapp_business_account","entry":[{"id":"264937493375603","changes":[{"value":{"messaging_product"'
    b':"whatsapp","metadata":{"display_phone_number":"15550953877","phone_number_id":"277321005464405"},"contacts":'
    b'[{"profile":{"name":"PyWa Tests"},"wa_id":"972544401243"}],"messages":[{"from":"972544401243","id":"wamid.HBg'
    b'MOTcyNTQ0NDAxMjQzFQIAEhggM0RFQTNCMEEwRTY3QzUwODYzMDc4NjQ4QzM4ODAxM0YA","timestamp":"1730231903","text":{"bo'
    b'dy":"Hey there! I am using PyWa."},"type":"text"}]},"field":"messages"}]}]}'
)
VECTOR_HEADER = "sha256=54edfa1d7259e0eb13c677cc7d73d1b5c86cfa12433d19156e058ab9251bc441"


def test_public_vector_verifies() -> None:
    assert sign(VECTOR_BODY, VECTOR_SECRET) == VECTOR_HEADER
    assert verify_signature(VECTOR_BODY, VECTOR_HEADER, VECTOR_SECRET) is SignatureCheck.OK


def test_uppercase_hex_is_accepted() -> None:
    upper = "sha256=" + VECTOR_HEADER.removeprefix("sha256=").upper()
    assert verify_signature(VECTOR_BODY, upper, VECTOR_SECRET) is SignatureCheck.OK


@pytest.mark.parametrize(
    "header",
    [
        VECTOR_HEADER[:-1] + "0",  # one nibble off
        VECTOR_HEADER[:-2],  # wrong length
        VECTOR_HEADER + "00",  # wrong length
        VECTOR_HEADER.removeprefix("sha256="),  # no prefix
        "sha1=" + VECTOR_HEADER.removeprefix("sha256="),
        "sha256=zz",
        "sha256=é",
    ],
)
def test_bad_signatures_mismatch(header: str) -> None:
    assert verify_signature(VECTOR_BODY, header, VECTOR_SECRET) is SignatureCheck.MISMATCH


def test_missing_header() -> None:
    assert verify_signature(VECTOR_BODY, None, VECTOR_SECRET) is SignatureCheck.MISSING
    assert verify_signature(VECTOR_BODY, "", VECTOR_SECRET) is SignatureCheck.MISSING


def test_empty_secret_never_verifies() -> None:
    forged = sign(VECTOR_BODY, b"")
    assert verify_signature(VECTOR_BODY, forged, b"") is SignatureCheck.MISMATCH


def test_reserialised_unicode_body_does_not_verify() -> None:
    """Meta escapes non-ASCII; hashing a re-encoded body (raw UTF-8) must fail, which is why we hash raw bytes."""
    escaped = b'{"text":"caf\\u00e9"}'
    raw = '{"text":"café"}'.encode()
    header = sign(escaped, b"s3cret")
    assert verify_signature(escaped, header, b"s3cret") is SignatureCheck.OK
    assert verify_signature(raw, header, b"s3cret") is SignatureCheck.MISMATCH
