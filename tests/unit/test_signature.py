"""The SMS gateway's HMAC signature: what is signed, and what is refused."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from reputation.errors import Unauthorized
from reputation.signature import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    gateway_secrets,
    sign,
    verify,
)

SECRET = b"s3cret"
BODY = (
    '{"message_id": "m1", "from": "0987000001", "to": "156", "text": "LD 0912345678 lừa đảo"}'
).encode()
NOW = 1_767_268_800


def headers(timestamp: int, signature: str) -> dict[str, str]:
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature}


def test_the_signed_string_is_timestamp_dot_raw_body() -> None:
    expected = hmac.new(SECRET, b"1767268800." + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, NOW, BODY) == "sha256=" + expected


def test_a_fresh_signature_passes() -> None:
    verify([SECRET], headers(NOW, sign(SECRET, NOW, BODY)), BODY, now=NOW + 299)
    verify(
        [SECRET],
        headers(NOW, sign(SECRET, NOW, BODY).upper().replace("SHA256=", "sha256=")),
        BODY,
        now=NOW,
    )


@pytest.mark.parametrize(
    ("given", "now", "code"),
    [
        ({}, NOW, "missing_signature"),
        ({TIMESTAMP_HEADER: str(NOW)}, NOW, "missing_signature"),
        (headers(NOW, sign(SECRET, NOW, BODY)), NOW + 301, "stale_signature"),
        (headers(NOW, sign(SECRET, NOW, BODY)), NOW - 301, "stale_signature"),
        (headers(NOW, sign(b"other", NOW, BODY)), NOW, "invalid_signature"),
        (headers(NOW, sign(SECRET, NOW, BODY + b" ")), NOW, "invalid_signature"),
        (headers(NOW + 1, sign(SECRET, NOW, BODY)), NOW, "invalid_signature"),
        ({TIMESTAMP_HEADER: "yesterday", SIGNATURE_HEADER: "sha256=00"}, NOW, "invalid_signature"),
        ({TIMESTAMP_HEADER: "-5", SIGNATURE_HEADER: "sha256=00"}, NOW, "invalid_signature"),
        ({TIMESTAMP_HEADER: "9" * 40, SIGNATURE_HEADER: "sha256=00"}, NOW, "invalid_signature"),
        (headers(NOW, "sha256=ü"), NOW, "invalid_signature"),
    ],
)
def test_refusals(given: dict[str, str], now: int, code: str) -> None:
    with pytest.raises(Unauthorized) as refused:
        verify([SECRET], given, BODY, now=now)
    assert refused.value.code == code


def test_secrets_rotate() -> None:
    secrets = gateway_secrets("new-secret, s3cret")
    assert secrets == (b"new-secret", b"s3cret")
    verify(secrets, headers(NOW, sign(SECRET, NOW, BODY)), BODY, now=NOW)
    verify(secrets, headers(NOW, sign(b"new-secret", NOW, BODY)), BODY, now=NOW)
    assert gateway_secrets(None) == ()
    assert gateway_secrets(" , ") == ()
