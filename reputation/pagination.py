"""Keyset pagination of the listings: page sizes and opaque cursors.

A cursor holds the sort key of the last item of a page (never an offset), so
the next page is one index range scan however deep it is, and items added
meanwhile never shift or repeat the pages after it. Cursors are base64url
JSON, tagged with the listing they belong to; a client treats them as opaque.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from reputation.constants import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from reputation.errors import BadRequest

# Longest cursor read: a sort key and a number fit in far less.
MAX_CURSOR_CHARS = 300


def page_limit(query: Mapping[str, str]) -> int:
    """The ``limit`` query parameter: 1 to ``MAX_PAGE_SIZE``, ``DEFAULT_PAGE_SIZE`` if absent."""
    raw = query.get("limit")
    if raw is None or raw == "":
        return DEFAULT_PAGE_SIZE
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise BadRequest(
            f"'limit' must be a whole number from 1 to {MAX_PAGE_SIZE}.",
            code="invalid_limit",
            field="limit",
        )
    return int(raw)


def encode_cursor(listing: str, *key: Any) -> str:
    text = json.dumps([listing, *key], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(query: Mapping[str, str], listing: str) -> list[Any] | None:
    """The sort key in ``?cursor=``, for ``listing``; None when absent; 400 when not ours."""
    raw = query.get("cursor")
    if raw is None or raw == "":
        return None
    try:
        if len(raw) > MAX_CURSOR_CHARS:
            raise ValueError(raw)
        decoded = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        if not isinstance(decoded, list) or not decoded or decoded[0] != listing:
            raise ValueError(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise BadRequest(
            "'cursor' is not a cursor of this listing: pass next_cursor back as it was given.",
            code="invalid_cursor",
            field="cursor",
        ) from None
    return decoded[1:]


def invalid_cursor() -> BadRequest:
    """For a cursor that decodes but whose key has the wrong shape."""
    return BadRequest(
        "'cursor' is not a cursor of this listing: pass next_cursor back as it was given.",
        code="invalid_cursor",
        field="cursor",
    )
