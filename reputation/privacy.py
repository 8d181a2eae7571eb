"""Reporter identities: kept only as keyed hashes, never as numbers."""

from __future__ import annotations

import hashlib
import hmac


def reporter_hash(key: bytes, reporter: str | None, channel: str) -> bytes:
    """The identity of whoever made a report, as HMAC-SHA256 under the server's key.

    A reporter who gave their number is identified by it, so that they count
    once per reported number. Anonymous reports of one channel share one
    identity: many anonymous reports weigh as much as one reporter.
    """
    identity = reporter if reporter is not None else f"anonymous:{channel}"
    return hmac.new(key, identity.encode(), hashlib.sha256).digest()
