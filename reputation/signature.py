"""Proof that a webhook call comes from our SMS gateway: HMAC-SHA256 over the raw body.

The gateway sends two headers with each call:

    X-Gateway-Timestamp: 1767268800
    X-Gateway-Signature: sha256=<64 lowercase hex digits>

where the signature is HMAC-SHA256, keyed with the shared secret (the UTF-8
bytes of ``REPUTATION_SMS_GATEWAY_SECRET``), of the ASCII timestamp, one ``.``
and the raw request body, byte for byte as sent:

    hmac_sha256(secret, b"1767268800." + body).hexdigest()

A call whose timestamp is more than five minutes away from the node's clock is
refused, so a captured request cannot be replayed later; a replay inside that
window is answered from the message id, counting nothing twice. Several
secrets may be configured, separated by commas, to rotate the secret without
refusing the gateway in between.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

from reputation.errors import Unauthorized

TIMESTAMP_HEADER = "X-Gateway-Timestamp"
SIGNATURE_HEADER = "X-Gateway-Signature"
SIGNATURE_SCHEME = "sha256="
# Requests older (or further in the future) than this are refused as replays.
MAX_SIGNATURE_AGE_SECONDS = 300
# Routes that only our SMS gateway may call, and only with a valid signature.
SIGNED_ROUTES = frozenset({"/v1/sms/inbound"})


def gateway_secrets(setting: str | None) -> tuple[bytes, ...]:
    """The configured secrets (a comma-separated list, so that one can be rotated)."""
    if not setting:
        return ()
    return tuple(part.strip().encode() for part in setting.split(",") if part.strip())


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The ``X-Gateway-Signature`` value for this body at this time."""
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return SIGNATURE_SCHEME + digest.hexdigest()


def verify(secrets: Sequence[bytes], headers: Mapping[str, str], body: bytes, now: float) -> None:
    """Nothing if the call is signed by one of ``secrets`` within the last five minutes."""
    stamp_text = headers.get(TIMESTAMP_HEADER)
    given = headers.get(SIGNATURE_HEADER)
    if stamp_text is None or given is None:
        raise Unauthorized(
            f"Send {TIMESTAMP_HEADER} and {SIGNATURE_HEADER} (HMAC-SHA256 of the body).",
            code="missing_signature",
        )
    stamp_text = stamp_text.strip()
    if not (stamp_text.isascii() and stamp_text.isdigit() and len(stamp_text) <= 12):
        raise Unauthorized(
            f"{TIMESTAMP_HEADER} must be Unix time in seconds.", code="invalid_signature"
        )
    timestamp = int(stamp_text)
    if abs(now - timestamp) > MAX_SIGNATURE_AGE_SECONDS:
        raise Unauthorized(
            f"{TIMESTAMP_HEADER} is more than {MAX_SIGNATURE_AGE_SECONDS} s away from "
            "the server's clock.",
            code="stale_signature",
        )
    given = given.strip().lower()
    for secret in secrets:
        if hmac.compare_digest(given.encode(), sign(secret, timestamp, body).encode()):
            return
    raise Unauthorized("The gateway signature does not match the body.", code="invalid_signature")
