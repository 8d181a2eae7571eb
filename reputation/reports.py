"""Report intake: a JSON body in, a validated ``NewReport`` out, or a coded error."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from reputation.constants import (
    CATEGORIES,
    CHANNELS,
    DEFAULT_CATEGORY,
    MAX_CONTENT_CHARS,
    MAX_IDEMPOTENCY_KEY_CHARS,
    SMS_IDEMPOTENCY_PREFIX,
    SPOOL_IDEMPOTENCY_PREFIX,
)
from reputation.errors import BadRequest, InvalidNumber
from reputation.normalize import normalize
from reputation.records import NewReport

# Printable ASCII, as HTTP header values are meant to be (UUIDs, ULIDs, ...).
_IDEMPOTENCY_KEY = re.compile(rf"[\x20-\x7e]{{1,{MAX_IDEMPOTENCY_KEY_CHARS}}}")


def optional_string(body: Mapping[str, Any], field: str) -> str | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"'{field}' must be a string.", code="invalid_field", field=field)
    if "\x00" in value or not _encodable(value):
        raise BadRequest(
            f"'{field}' holds characters that are not text.", code="invalid_field", field=field
        )
    return value


def _encodable(text: str) -> bool:
    """False for lone surrogates, which JSON allows but UTF-8 (and Postgres) does not."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def number_field(body: Mapping[str, Any], field: str, region: str) -> str | None:
    """The E.164 form of a number field; errors name the field they are about."""
    text = optional_string(body, field)
    if text is None:
        return None
    try:
        return normalize(text, region)
    except InvalidNumber as exc:
        raise InvalidNumber(exc.message, code=exc.code, field=field) from None


def parse_report(
    body: Mapping[str, Any], region: str, idempotency_key: str | None = None
) -> NewReport:
    """Validate a ``POST /v1/reports`` body."""
    e164 = number_field(body, "number", region)
    if e164 is None:
        raise BadRequest("'number' is required.", code="missing_field", field="number")
    reporter = number_field(body, "reporter", region)
    if reporter == e164:
        raise BadRequest("A number cannot be reported by itself.", code="self_report")
    channel = optional_string(body, "channel") or "api"
    if channel not in CHANNELS:
        raise BadRequest(f"'channel' must be one of {', '.join(CHANNELS)}.", code="invalid_channel")
    category = optional_string(body, "category") or DEFAULT_CATEGORY
    if category not in CATEGORIES:
        raise BadRequest(
            f"'category' must be one of {', '.join(CATEGORIES)}.", code="invalid_category"
        )
    content = optional_string(body, "content")
    if content is not None:
        content = content.strip() or None
    if content is not None and len(content) > MAX_CONTENT_CHARS:
        raise BadRequest(
            f"'content' is limited to {MAX_CONTENT_CHARS} characters.", code="content_too_long"
        )
    if idempotency_key is not None and not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise BadRequest(
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} printable ASCII characters.",
            code="invalid_idempotency_key",
        )
    if idempotency_key is not None and idempotency_key.startswith(SMS_IDEMPOTENCY_PREFIX):
        raise BadRequest(
            f"Idempotency-Keys starting with {SMS_IDEMPOTENCY_PREFIX!r} are reserved for SMS.",
            code="invalid_idempotency_key",
        )
    if idempotency_key is not None and idempotency_key.startswith(SPOOL_IDEMPOTENCY_PREFIX):
        raise BadRequest(
            f"Idempotency-Keys starting with {SPOOL_IDEMPOTENCY_PREFIX!r} are reserved for "
            "reports kept while the database was down.",
            code="invalid_idempotency_key",
        )
    return NewReport(e164, reporter, channel, category, content, idempotency_key)
