"""The OpenAPI 3.1 description of the HTTP API, served at ``/openapi.json``.

Written by hand, next to the code it describes, and kept true by
``tests/integration/test_openapi.py``: every registered route (method and
path) must be described here with the roles its handler declares
(``x-roles``, from ``auth.requires``), every error code the service can send
must be in ``ErrorCode``, and real answers must validate against the schemas.

To describe a new route: add its operation to one of the ``*_PATHS`` tables
below (or a new table of your concern, listed in ``PATHS``), reusing the
helpers (``operation``, ``json_request``, ``json_response``, ``errors``).
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from aiohttp import web

from reputation import __version__
from reputation.auth import public
from reputation.constants import (
    CATEGORIES,
    CHANNELS,
    DEFAULT_PAGE_SIZE,
    MAX_BATCH_NUMBERS,
    MAX_CONTACT_CHARS,
    MAX_CONTENT_CHARS,
    MAX_IDEMPOTENCY_KEY_CHARS,
    MAX_MESSAGE_ID_CHARS,
    MAX_NAME_CHARS,
    MAX_NOTE_CHARS,
    MAX_PAGE_SIZE,
    MAX_REASON_CHARS,
    RANGE_MIN_ENTRIES,
    RANGE_PREFIX_LENGTHS,
    STATUSES,
)
from reputation.normalize import MAX_INPUT_CHARS
from reputation.sms import KEYWORDS, SMS_ERRORS
from reputation.verdict import REASONS

Schema = dict[str, Any]

# Every error code a client can receive in ``{"error": {"code": ...}}``. A test
# collects the codes from the source and fails when one is missing here.
ERROR_CODES = (
    # The number could not be read (400).
    "empty",
    "input_too_long",
    "too_long",
    "invalid_characters",
    "multiple_numbers",
    "short_code",
    "alphanumeric_sender_id",
    "invalid_number",
    # The request is malformed (400).
    "bad_request",
    "invalid_json",
    "invalid_field",
    "missing_field",
    "invalid_channel",
    "invalid_category",
    "content_too_long",
    "self_report",
    "invalid_idempotency_key",
    "invalid_attestation",
    "invalid_verstat",
    "invalid_status",
    "invalid_order",
    "invalid_verdict",
    "invalid_appeal",
    "invalid_limit",
    "invalid_cursor",
    "text_too_long",
    # Other statuses.
    "not_found",
    "method_not_allowed",
    "idempotency_conflict",
    "conflict",
    "number_not_listed",
    "not_protected",
    "appeal_not_found",
    "appeal_already_open",
    "appeal_resolved",
    "payload_too_large",
    "batch_too_large",
    "uri_too_long",
    "unsupported_media_type",
    "headers_too_large",
    "http_error",
    "unavailable",
    "database_unavailable",
    "internal_error",
    # Authentication, authorisation and abuse limits (auth.py, signature.py).
    "missing_api_key",
    "invalid_api_key",
    "forbidden",
    "rate_limited",
    "reporter_rate_limited",
    "request_timeout",
    "incomplete_body",
    "missing_signature",
    "invalid_signature",
    "stale_signature",
    "gateway_secret_unset",
    # The published list: ranges, exports, the Bloom filter.
    "invalid_prefix",
    "invalid_version",
    "version_unknown",
    "ranges_disabled",
    "ranges_loading",
    "export_busy",
    "bloom_loading",
)

VERDICTS = ("allow", "warn", "block")
NUMBER_STATUSES = ("reported", "confirmed", "cleared", "allowlisted")
# The reasons a verdict can give (``verdict.judge``).
VERDICT_REASONS = REASONS


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    """``schema`` or JSON ``null`` (OpenAPI 3.1 spells it as a type list)."""
    return {"oneOf": [schema, {"type": "null"}]}


SCHEMAS: dict[str, Schema] = {
    "E164": {
        "type": "string",
        "pattern": r"^\+[1-9][0-9]{6,14}$",
        "description": "A phone number in E.164 form: '+', country code, national number.",
        "examples": ["+84912345678"],
    },
    "WrittenNumber": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_INPUT_CHARS,
        "description": (
            "A phone number as people write it: '0912 345 678', '+84 912-345-678', "
            "'0084912345678', 'tel:0912345678', full-width digits... Numbers without a "
            "country code are read in the service's region (REPUTATION_REGION, default VN)."
        ),
        "examples": ["0912 345 678"],
    },
    "Verdict": {
        "type": "string",
        "enum": list(VERDICTS),
        "description": "What a carrier or app should do with a call or message from the number.",
    },
    "Channel": {
        "type": "string",
        "enum": list(CHANNELS),
        "description": "Where a report came from.",
    },
    "Category": {
        "type": "string",
        "enum": list(CATEGORIES),
        "description": "What a report says about the number.",
    },
    "ErrorCode": {
        "type": "string",
        "enum": list(ERROR_CODES),
        "description": "Machine-readable reason of an error; the message is for people.",
    },
    "Error": {
        "type": "object",
        "description": "Every error answer (4xx and 5xx) has this shape.",
        "required": ["error"],
        "additionalProperties": False,
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": ref("ErrorCode"),
                    "message": {"type": "string", "minLength": 1},
                    "field": {
                        "type": "string",
                        "description": "The request field the error is about, when there is one.",
                    },
                },
            }
        },
        "examples": [
            {
                "error": {
                    "code": "invalid_characters",
                    "message": "The number contains letters or symbols that are not part "
                    "of a number.",
                    "field": "number",
                }
            }
        ],
    },
    "NumberAnswer": {
        "type": "object",
        "description": "What is known about one number, and the verdict.",
        "required": [
            "number",
            "degraded",
            "reported",
            "verdict",
            "score",
            "confidence",
            "reports",
            "reporters",
            "heat",
            "categories",
            "status",
            "first_reported_at",
            "last_reported_at",
            "reasons",
            "appeal_url",
        ],
        "additionalProperties": False,
        "properties": {
            "number": ref("E164"),
            "degraded": {
                "type": "boolean",
                "description": "PostgreSQL could not be asked: this is the last answer the node "
                "knew, or, for a number it never knew, a fail-open `allow`.",
            },
            "reported": {"type": "boolean", "description": "At least one report was counted."},
            "verdict": ref("Verdict"),
            "score": {
                "type": "number",
                "minimum": 0,
                "maximum": 1,
                "description": "Weighted recent evidence over the block threshold (1: enough "
                "to block).",
            },
            "confidence": {
                "type": "number",
                "minimum": 0,
                "maximum": 1,
                "description": "How much evidence there is: the 95% Wilson lower bound for n "
                "agreeing (decayed) reporters, n / (n + 3.84); 1 for an analyst's decision.",
            },
            "reports": {"type": "integer", "minimum": 0, "description": "Reports kept."},
            "reporters": {
                "type": "integer",
                "minimum": 0,
                "description": "Distinct people whose reports counted ('reported by 11 people').",
            },
            "heat": {
                "type": "number",
                "minimum": 0,
                "description": "Recent activity: counted reports, each halving every 7 days.",
            },
            "categories": {
                "type": "object",
                "description": "Reports by category.",
                "propertyNames": ref("Category"),
                "additionalProperties": {"type": "integer", "minimum": 0},
            },
            "status": nullable({"type": "string", "enum": list(NUMBER_STATUSES)}),
            "first_reported_at": nullable({"type": "string", "format": "date-time"}),
            "last_reported_at": nullable({"type": "string", "format": "date-time"}),
            "reasons": {
                "type": "array",
                "items": {"type": "string", "enum": list(VERDICT_REASONS)},
                "description": "Why the verdict is what it is.",
            },
            "appeal_url": nullable(
                {
                    "type": "string",
                    "format": "uri",
                    "description": "Where the number's owner can appeal a warn or block verdict "
                    "(for SIP Call-Info with a 608 rejection, RFC 8688); null when not set.",
                }
            ),
        },
    },
    "LookupEntryError": {
        "type": "object",
        "description": "A batch entry that is not a usable number; the other entries are answered.",
        "required": ["input", "error"],
        "additionalProperties": False,
        "properties": {
            "input": {"description": "The entry as sent."},
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "additionalProperties": False,
                "properties": {
                    "code": ref("ErrorCode"),
                    "message": {"type": "string", "minLength": 1},
                },
            },
        },
    },
    "BatchLookupRequest": {
        "type": "object",
        "required": ["numbers"],
        "properties": {
            "numbers": {
                "type": "array",
                "maxItems": MAX_BATCH_NUMBERS,
                "items": ref("WrittenNumber"),
                "description": (
                    "The numbers to look up. An entry that is not a usable number (or not a "
                    "string) gets its own error in the answer; it does not fail the batch."
                ),
            }
        },
    },
    "BatchLookupAnswer": {
        "type": "object",
        "required": ["results"],
        "additionalProperties": False,
        "properties": {
            "results": {
                "type": "array",
                "maxItems": MAX_BATCH_NUMBERS,
                "description": "One entry per number asked, in the same order.",
                "items": {"oneOf": [ref("NumberAnswer"), ref("LookupEntryError")]},
            }
        },
    },
    "ReportRequest": {
        "type": "object",
        "required": ["number"],
        "description": "Other fields are ignored.",
        "properties": {
            "number": ref("WrittenNumber"),
            "reporter": nullable(ref("WrittenNumber")),
            "channel": nullable(ref("Channel")),
            "category": nullable(ref("Category")),
            "content": nullable(
                {
                    "type": "string",
                    "maxLength": MAX_CONTENT_CHARS,
                    "description": "What happened, in the reporter's words (trimmed).",
                }
            ),
        },
    },
    "Report": {
        "type": "object",
        "required": ["id", "number", "channel", "category", "content", "received_at"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "integer", "minimum": 1},
            "number": ref("E164"),
            "channel": ref("Channel"),
            "category": ref("Category"),
            "content": nullable({"type": "string", "maxLength": MAX_CONTENT_CHARS}),
            "received_at": {"type": "string", "format": "date-time"},
        },
    },
    "QueuedReportAnswer": {
        "type": "object",
        "description": "PostgreSQL was unreachable: the report is kept (fsynced) in the node's "
        "local spool and counted, exactly once, when PostgreSQL returns.",
        "required": ["queued", "idempotency_key", "report", "number"],
        "additionalProperties": False,
        "properties": {
            "queued": {"type": "boolean", "const": True},
            "idempotency_key": {
                "type": "string",
                "description": "The request's Idempotency-Key, or the one given to the report "
                "(`spool:...`) so that its replay counts once.",
            },
            "report": {
                "type": "object",
                "required": ["id", "number", "channel", "category", "content", "received_at"],
                "additionalProperties": False,
                "properties": {
                    "id": {"type": "null", "description": "Given when the report is replayed."},
                    "number": ref("E164"),
                    "channel": ref("Channel"),
                    "category": ref("Category"),
                    "content": nullable({"type": "string", "maxLength": MAX_CONTENT_CHARS}),
                    "received_at": {"type": "string", "format": "date-time"},
                },
            },
            "number": ref("NumberAnswer"),
        },
    },
    "ReportAnswer": {
        "type": "object",
        "required": ["report", "number"],
        "additionalProperties": False,
        "properties": {
            "report": ref("Report"),
            "number": ref("NumberAnswer"),
        },
    },
    "InboundSms": {
        "type": "object",
        "required": ["message_id", "from"],
        "description": "One SMS to 156/5656, as the gateway delivers it. Other fields are ignored.",
        "properties": {
            "message_id": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_MESSAGE_ID_CHARS,
                "description": "The gateway's id of the message; a retry carries the same id.",
            },
            "from": {
                "type": "string",
                "description": "The sender's number in any written form (kept only hashed).",
            },
            "to": {"type": "string", "description": "The short code written to: 156 or 5656."},
            "text": nullable({"type": "string", "description": "The message as sent."}),
            "received_at": nullable(
                {
                    "oneOf": [{"type": "string", "format": "date-time"}, {"type": "number"}],
                    "description": "When the gateway received it: ISO 8601 (Vietnam time "
                    "without an offset) or Unix seconds.",
                }
            ),
        },
        "examples": [
            {
                "message_id": "7f3c2a",
                "from": "84987000001",
                "to": "156",
                "text": "LD 0912345678 gọi giả danh công an",
                "received_at": "2026-01-01T09:30:00+07:00",
            }
        ],
    },
    "SmsAnswer": {
        "type": "object",
        "description": "What the message became; the gateway sends `reply` to the citizen.",
        "required": ["accepted", "report_id", "number", "category", "content", "reply"],
        "additionalProperties": False,
        "properties": {
            "accepted": {"type": "boolean", "description": "A report was kept."},
            "report_id": nullable({"type": "integer", "minimum": 1}),
            "number": nullable(ref("E164")),
            "category": nullable({"type": "string", "enum": sorted(set(KEYWORDS.values()))}),
            "content": nullable({"type": "string", "maxLength": MAX_CONTENT_CHARS}),
            "error": {
                "type": "string",
                "enum": list(SMS_ERRORS),
                "description": "Why no report was kept (only when `accepted` is false).",
            },
            "reply": {"type": "string", "minLength": 1, "description": "In Vietnamese."},
            "queued": {
                "type": "boolean",
                "description": "PostgreSQL was unreachable: the message is kept in the node's "
                "local spool and processed when it returns (`report_id` is then null, and the "
                "reply carries no reference). Present only then.",
            },
        },
        "examples": [
            {
                "accepted": True,
                "report_id": 1234,
                "number": "+84912345678",
                "category": "scam",
                "content": "gọi giả danh công an",
                "reply": "Đã nhận phản ánh lừa đảo số 0912345678, mã 1234. Cảm ơn bạn!",
            }
        ],
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "additionalProperties": False,
        "properties": {"status": {"type": "string", "enum": ["alive"]}},
    },
    "PublishedCount": {
        "type": "integer",
        "enum": [0, 1, 2, 5, 10, 20, 50, 100],
        "description": "A count rounded down to 1, 2, 5, 10, 20, 50 or 100 (100: 100 or more).",
    },
    "ListedVerdict": {
        "type": "string",
        "enum": ["warn", "block"],
        "description": "A listed number's verdict (numbers at allow are not listed).",
    },
    "RangeInfo": {
        "type": "object",
        "required": ["hash", "input", "prefix_lengths", "prefix_length"],
        "additionalProperties": False,
        "properties": {
            "hash": {"type": "string", "enum": ["sha256"]},
            "input": {"type": "string", "description": "What is hashed."},
            "prefix_lengths": {
                "type": "array",
                "items": {"type": "integer", "enum": list(RANGE_PREFIX_LENGTHS)},
                "description": "Prefix lengths (hex characters) the service accepts.",
            },
            "prefix_length": {
                "type": "integer",
                "enum": list(RANGE_PREFIX_LENGTHS),
                "description": (
                    f"The length to use now: the longest whose ranges hold {RANGE_MIN_ENTRIES} "
                    "listed numbers on average (shorter: more privacy, bigger answers)."
                ),
            },
        },
    },
    "RangeEntry": {
        "type": "object",
        "required": ["suffix", "verdict", "category", "reports", "reporters"],
        "additionalProperties": False,
        "properties": {
            "suffix": {
                "type": "string",
                "pattern": "^[0-9a-f]{59,61}$",
                "description": "The rest of the number's SHA-256, after the prefix asked.",
            },
            "verdict": ref("ListedVerdict"),
            "category": nullable(ref("Category")),
            "reports": ref("PublishedCount"),
            "reporters": ref("PublishedCount"),
        },
    },
    "RangeAnswer": {
        "type": "object",
        "required": ["prefix", "entries", "padding"],
        "additionalProperties": False,
        "properties": {
            "prefix": {"type": "string", "pattern": "^[0-9a-f]{3,5}$"},
            "entries": {
                "type": "array",
                "items": ref("RangeEntry"),
                "description": (
                    "Every listed number whose hash starts with the prefix, by suffix. A "
                    "number whose suffix is not here is not listed: its verdict is allow."
                ),
            },
            "padding": {
                "type": "string",
                "description": "Filler that makes every answer of a size class equally long.",
            },
        },
    },
    "Readiness": {
        "type": "object",
        "required": ["status", "bloom_filter", "database"],
        "additionalProperties": False,
        "properties": {
            "status": {
                "type": "string",
                "enum": ["ready", "degraded", "not_ready"],
                "description": "`degraded`: PostgreSQL is down; lookups are answered from memory.",
            },
            "bloom_filter": {"type": "string", "enum": ["loaded", "loading"]},
            "range_index": {
                "type": "string",
                "enum": ["loaded", "loading", "off"],
                "description": "The hash-prefix index behind /v1/ranges (REPUTATION_RANGES_INDEX).",
            },
            "database": {"type": "string", "enum": ["up", "down"]},
            "change_feed": {
                "type": "string",
                "enum": ["listening", "polling"],
                "description": "`polling`: the LISTEN connection is down; the timer reads on.",
            },
            "auth": {
                "type": "string",
                "enum": ["on", "off"],
                "description": "Whether API keys are checked; `off` only on a loopback address.",
            },
            "warning": {"type": "string", "description": "Present when authentication is off."},
        },
    },
}

PARAMETERS: dict[str, Schema] = {
    "Attestation": {
        "name": "attestation",
        "in": "query",
        "required": False,
        "description": (
            "STIR/SHAKEN attestation of the call being set up (any case). A protected number "
            "shown without A is answered as spoofed (reason spoofed_protected_number)."
        ),
        "schema": {"type": "string", "enum": ["A", "B", "C", "none", "a", "b", "c", "NONE"]},
    },
    "Verstat": {
        "name": "verstat",
        "in": "query",
        "required": False,
        "description": (
            "The verstat of the call's P-Asserted-Identity, instead of or with attestation: "
            "TN-Validation-Passed (taken as A unless attestation says the level; -A, -B, -C "
            "forms are read), TN-Validation-Failed (reason failed_validation), No-TN-Validation."
        ),
        "schema": {"type": "string"},
    },
    "Number": {
        "name": "number",
        "in": "path",
        "required": True,
        "description": "The number in any written form, URL-encoded ('%2B84912345678').",
        "schema": ref("WrittenNumber"),
    },
    "IdempotencyKey": {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": (
            "Makes a retry safe: the same key with the same body returns the first report "
            "(200) and counts nothing twice; with another body it is refused (409)."
        ),
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY_CHARS},
    },
}

REQUEST_ID_HEADER = {
    "X-Request-Id": {
        "description": "The request id also written in the service's log.",
        "schema": {"type": "string", "maxLength": 64},
    }
}


def json_request(schema_name: str, description: str = "") -> Schema:
    return {
        "required": True,
        "description": description,
        "content": {"application/json": {"schema": ref(schema_name)}},
    }


def json_response(description: str, schema: Schema) -> Schema:
    return {
        "description": description,
        "headers": REQUEST_ID_HEADER,
        "content": {"application/json": {"schema": schema}},
    }


def text_response(description: str, media_type: str) -> Schema:
    return {
        "description": description,
        "headers": REQUEST_ID_HEADER,
        "content": {media_type: {"schema": {"type": "string"}}},
    }


def errors(**by_status: str) -> dict[str, Schema]:
    """Error answers by status (``e400="codes ..."``), plus the default error shape."""
    found = {
        status.removeprefix("e"): json_response(description, ref("Error"))
        for status, description in by_status.items()
    }
    found["default"] = json_response(
        "Any other error (404 not_found, 405 method_not_allowed, 500 internal_error, ...).",
        ref("Error"),
    )
    return found


# What every operation that needs an API key may also answer (auth.py).
AUTH_ERRORS: dict[str, Schema] = {
    "401": json_response(
        "No API key, or an unknown or revoked one: missing_api_key, invalid_api_key.",
        ref("Error"),
    ),
    "403": json_response("The key's role does not allow this call: forbidden.", ref("Error")),
    "429": {
        **json_response(
            "The key's rate limit is spent (rate_limited), or the reporter's "
            "(reporter_rate_limited); retry after Retry-After seconds.",
            ref("Error"),
        ),
        "headers": {
            **REQUEST_ID_HEADER,
            "Retry-After": {
                "description": "Seconds to wait before retrying.",
                "schema": {"type": "integer", "minimum": 1},
            },
        },
    },
}


def operation(
    operation_id: str,
    summary: str,
    description: str,
    *,
    tag: str,
    roles: tuple[str, ...] | None,
    responses: dict[str, Schema],
    parameters: list[Schema] | None = None,
    request: Schema | None = None,
) -> Schema:
    """One operation; ``roles=None`` marks a public route (no API key)."""
    found: Schema = {
        "operationId": operation_id,
        "summary": summary,
        "description": description,
        "tags": [tag],
    }
    if roles is None:
        found["security"] = []
    else:
        # ``admin`` may call everything (auth.requires adds it).
        found["security"] = [{"apiKey": []}]
        found["x-roles"] = sorted({*roles, "admin"})
        responses = {**AUTH_ERRORS, **responses}
    if parameters:
        found["parameters"] = parameters
    if request is not None:
        found["requestBody"] = request
    found["responses"] = responses
    return found


NUMBER_PARAMETER = {"$ref": "#/components/parameters/Number"}
NUMBER_ERRORS = "The number cannot be read: empty, input_too_long, too_long, invalid_characters, "
NUMBER_ERRORS += "multiple_numbers, short_code, alphanumeric_sender_id, invalid_number."

LOOKUP_PATHS: dict[str, Schema] = {
    "/v1/numbers/{number}": {
        "get": operation(
            "lookupNumber",
            "Look up one number",
            "Is this number reported, and what should be done with its call? Answered from "
            "memory in microseconds for almost every number; a number nobody reported is "
            "`allow` with `reported: false`.",
            tag="lookups",
            roles=("lookup", "analyst"),
            parameters=[
                NUMBER_PARAMETER,
                {"$ref": "#/components/parameters/Attestation"},
                {"$ref": "#/components/parameters/Verstat"},
            ],
            responses={
                "200": json_response("The answer.", ref("NumberAnswer")),
                **errors(
                    e400=NUMBER_ERRORS.removesuffix(".") + "; invalid_attestation, "
                    "invalid_verstat.",
                    e503="database_unavailable: retry later.",
                ),
            },
        )
    },
    "/v1/lookups": {
        "post": operation(
            "lookupNumbers",
            "Look up many numbers at once",
            f"At most {MAX_BATCH_NUMBERS} numbers; answers in the same order. A bad entry gets "
            "its own error and does not fail the others.",
            tag="lookups",
            roles=("lookup", "analyst"),
            request=json_request("BatchLookupRequest"),
            responses={
                "200": json_response("One answer or error per number.", ref("BatchLookupAnswer")),
                **errors(
                    e400="invalid_json, invalid_field ('numbers' is not a list).",
                    e413="batch_too_large, payload_too_large.",
                    e503="database_unavailable: retry later.",
                ),
            },
        )
    },
}

REPORT_PATHS: dict[str, Schema] = {
    "/v1/reports": {
        "post": operation(
            "submitReport",
            "Report a number",
            "Keeps the report (the reporter's number only as a keyed hash) and answers with the "
            "number's new aggregate. Send an `Idempotency-Key` to retry safely.",
            tag="reports",
            roles=("report", "analyst"),
            parameters=[{"$ref": "#/components/parameters/IdempotencyKey"}],
            request=json_request("ReportRequest"),
            responses={
                "201": json_response("The report was kept.", ref("ReportAnswer")),
                "200": json_response(
                    "A replay of an earlier Idempotency-Key: the first report, counted once.",
                    ref("ReportAnswer"),
                ),
                "202": json_response(
                    "PostgreSQL is unreachable: the report waits in the node's local spool and "
                    "is kept when PostgreSQL returns.",
                    ref("QueuedReportAnswer"),
                ),
                **errors(
                    e400=NUMBER_ERRORS.removesuffix(".")
                    + " (with 'field'); invalid_json, invalid_field, missing_field, "
                    "invalid_channel, invalid_category, content_too_long, self_report, "
                    "invalid_idempotency_key.",
                    e409="idempotency_conflict: the key was used for another report.",
                    e413="payload_too_large.",
                    e503="database_unavailable (with Retry-After): the database is unreachable "
                    "and the local spool is full; nothing was kept, retry later.",
                ),
            },
        )
    },
}

SMS_PATHS: dict[str, Schema] = {
    "/v1/sms/inbound": {
        "post": operation(
            "receiveSms",
            "An SMS to 156/5656, from the SMS gateway",
            "Reads `LD <number> <content>` (scam), `V ...` (spam call) or `S ...` (spam SMS), "
            "keeps the report, and answers with the reply to send back. A message that makes no "
            "report is still recorded and answered 200 with `accepted: false` and an `error`. "
            "The same `message_id` again returns the first answer and counts nothing twice. "
            "While PostgreSQL is unreachable the message is kept in the node's local spool and "
            "answered at once with `queued: true`. "
            "Needs the gateway's signature (X-Gateway-Timestamp, X-Gateway-Signature).",
            tag="sms",
            roles=("sms_gateway",),
            request=json_request("InboundSms"),
            responses={
                "200": json_response("What the message became.", ref("SmsAnswer")),
                **errors(
                    e400="invalid_json, missing_field, invalid_field (with 'field').",
                    e401="missing_api_key, invalid_api_key, missing_signature, "
                    "invalid_signature, stale_signature.",
                    e413="payload_too_large.",
                    e503="database_unavailable, gateway_secret_unset: nothing was kept; retry.",
                ),
            },
        )
    },
}

OPERATIONS_PATHS: dict[str, Schema] = {
    "/": {
        "get": operation(
            "statusPage",
            "Status page of this node",
            "Lookups per minute by verdict (this node), reports per minute (all nodes), the "
            "verdict mix, the most reported numbers of the last day (masked unless the caller "
            "is an analyst, or authentication is off), this node's health and every node "
            "following the change feed, as HTML with "
            "inline SVG; nothing is fetched from elsewhere. Reloads itself every 30 s.",
            tag="operations",
            roles=None,
            responses={"200": text_response("The page.", "text/html"), **errors()},
        )
    },
    "/metrics": {
        "get": operation(
            "metrics",
            "Prometheus metrics of this node",
            "Text exposition format; no label ever carries a phone number. Whichever worker "
            "process answers, every worker's series are there, labelled `worker` when the "
            "node runs more than one.",
            tag="operations",
            roles=None,
            responses={
                "200": text_response("The metrics.", "text/plain"),
                **errors(),
            },
        )
    },
    "/healthz": {
        "get": operation(
            "health",
            "Is the process alive",
            "Liveness: 200 as long as the process answers HTTP.",
            tag="operations",
            roles=None,
            responses={"200": json_response("Alive.", ref("Health")), **errors()},
        )
    },
    "/readyz": {
        "get": operation(
            "readiness",
            "Can this node answer lookups",
            "Readiness: 200 once the Bloom filter is loaded, and still while PostgreSQL is "
            "down (lookups are then answered from memory and the body says `degraded`).",
            tag="operations",
            roles=None,
            responses={
                "200": json_response("Ready (or degraded).", ref("Readiness")),
                "503": json_response("Not ready yet.", ref("Readiness")),
                **errors(),
            },
        )
    },
}

DOCUMENTATION_PATHS: dict[str, Schema] = {
    "/openapi.json": {
        "get": operation(
            "openapi",
            "This description",
            "The OpenAPI 3.1 description of the API, as JSON.",
            tag="documentation",
            roles=None,
            responses={
                "200": {
                    "description": "The OpenAPI document.",
                    "headers": REQUEST_ID_HEADER,
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **errors(),
            },
        )
    },
    "/docs": {
        "get": operation(
            "apiPage",
            "The API, as a page to read",
            "This description rendered as HTML by the service itself (no external assets).",
            tag="documentation",
            roles=None,
            responses={"200": text_response("The page.", "text/html"), **errors()},
        )
    },
}

LIST_ROLES = ("lookup", "analyst")

LIST_PATHS: dict[str, Schema] = {
    "/v1/ranges": {
        "get": operation(
            "rangeInfo",
            "How to ask for a hash-prefix range",
            "The hash, the prefix lengths accepted and the one to use now.",
            tag="lists",
            roles=LIST_ROLES,
            responses={
                "200": json_response("The parameters.", ref("RangeInfo")),
                **errors(e503="ranges_loading: retry shortly."),
            },
        )
    },
    "/v1/ranges/{prefix}": {
        "get": operation(
            "lookupRange",
            "Private lookup: every listed number whose hash starts with a prefix",
            "Hash the number (`sha256` of its E.164 text with the '+', as UTF-8, lowercase hex), "
            "send the first 3 to 5 characters, and look for the rest of the hash among the "
            "entries: the service never learns which number was checked. Answers are padded "
            "to a few fixed sizes and carry an ETag (send `If-None-Match`: 304).",
            tag="lists",
            roles=LIST_ROLES,
            parameters=[
                {
                    "name": "prefix",
                    "in": "path",
                    "required": True,
                    "description": "The first 3, 4 or 5 hex characters of the number's SHA-256.",
                    "schema": {"type": "string", "pattern": "^[0-9a-fA-F]{3,5}$"},
                }
            ],
            responses={
                "200": json_response("The range.", ref("RangeAnswer")),
                "304": {"description": "Not modified since the ETag sent."},
                **errors(
                    e400="invalid_prefix.",
                    e404="ranges_disabled: this node does not serve ranges.",
                    e503="ranges_loading: retry shortly.",
                ),
            },
        )
    },
    "/v1/export": {
        "get": operation(
            "exportList",
            "The published list, whole or since a version (JSON lines)",
            "Every listed number (verdict warn or block) with its category and rounded counts; "
            "with `since`, only what changed after that version, numbers that left the list "
            'as `{"number", "deleted": true}`. Lines: a header `{"version", "since", "full"}`, '
            'the entries, then `{"end": true, "entries": N}`; a stream without that last line '
            "was cut short. Keep `version` for the next call. Applying a delta twice is "
            "harmless (entries carry the whole current state). Streamed, gzip if accepted.",
            tag="lists",
            roles=LIST_ROLES,
            parameters=[
                {
                    "name": "since",
                    "in": "query",
                    "required": False,
                    "description": (
                        "The `version` of the last export applied, exactly as received "
                        "(an opaque text such as `15381:15390:15384`)."
                    ),
                    "schema": {"type": "string", "pattern": "^[0-9]+:[0-9]+:[0-9,]*$"},
                }
            ],
            responses={
                "200": text_response("JSON lines.", "application/x-ndjson"),
                **errors(
                    e400="invalid_version.",
                    e410="version_unknown: download the whole list again (no `since`).",
                    e503="export_busy (see Retry-After), database_unavailable.",
                ),
            },
        )
    },
    "/v1/bloom": {
        "get": operation(
            "bloomFilter",
            "This node's Bloom filter of every known number",
            "A line of JSON with the parameters (`slices` k, `bits_per_slice` m, `hash` "
            "xxh3_128, `bit_order` lsb0), a newline, then the k*m bits. Bit i of the number "
            "'+84...' for slice j: d = xxh3_128(number as UTF-8), h1 = d mod 2^64, "
            "h2 = d >> 64, bit = j*m + (h1 + j*h2) mod m, stored in byte bit>>3 at bit bit&7. "
            "All k bits set: maybe known, ask the service; otherwise never reported.",
            tag="lists",
            roles=LIST_ROLES,
            responses={
                "200": {
                    "description": "The filter file.",
                    "headers": REQUEST_ID_HEADER,
                    "content": {
                        "application/octet-stream": {
                            "schema": {
                                "type": "string",
                                "contentMediaType": "application/octet-stream",
                            }
                        }
                    },
                },
                "304": {"description": "Not modified since the ETag sent."},
                **errors(e503="bloom_loading: retry shortly."),
            },
        )
    },
}

# --- Analysts: review queue, statuses and audit trail; appeals; protected numbers ---

TIMESTAMP: Schema = {"type": "string", "format": "date-time"}
NEXT_CURSOR: Schema = nullable(
    {
        "type": "string",
        "description": "Pass it back as ?cursor= for the next page; null on the last page.",
    }
)

SCHEMAS.update(
    {
        "NumberStatus": {
            "type": "string",
            "enum": list(STATUSES),
            "description": "reported (automatic), confirmed (block), cleared (allow until new "
            "people report it), allowlisted (never blocked).",
        },
        "StatusRequest": {
            "type": "object",
            "required": ["status", "note"],
            "properties": {
                "status": ref("NumberStatus"),
                "note": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_NOTE_CHARS,
                    "description": "Why: kept in the audit trail.",
                },
            },
        },
        "AuditEntry": {
            "type": "object",
            "description": "Who changed what about a number, when, from what, to what, why.",
            "required": ["id", "number", "action", "actor", "from", "to", "note", "at"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "integer", "minimum": 1},
                "number": ref("E164"),
                "action": {"type": "string", "enum": ["status", "protect", "unprotect", "appeal"]},
                "actor": {"type": "string", "description": "The API key's name (or cli:USER)."},
                "from": nullable({"type": "string"}),
                "to": nullable({"type": "string"}),
                "note": nullable({"type": "string"}),
                "at": TIMESTAMP,
            },
        },
        "StatusAnswer": {
            "type": "object",
            "required": ["number", "change"],
            "additionalProperties": False,
            "properties": {"number": ref("NumberAnswer"), "change": ref("AuditEntry")},
        },
        "History": {
            "type": "object",
            "required": ["number", "history", "next_cursor"],
            "additionalProperties": False,
            "properties": {
                "number": ref("E164"),
                "history": {"type": "array", "items": ref("AuditEntry")},
                "next_cursor": NEXT_CURSOR,
            },
        },
        "ListedReport": {
            "type": "object",
            "required": [
                "id",
                "reporter",
                "reporter_id",
                "channel",
                "category",
                "content",
                "received_at",
                "counted",
            ],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "integer", "minimum": 1},
                "reporter": nullable(
                    {"type": "string", "description": "Masked: '+84 98x xxx x01'; null: anonymous."}
                ),
                "reporter_id": {
                    "type": "string",
                    "description": "A pseudonym: the same for every report of one reporter.",
                },
                "channel": ref("Channel"),
                "category": ref("Category"),
                "content": nullable({"type": "string", "maxLength": MAX_CONTENT_CHARS}),
                "received_at": TIMESTAMP,
                "counted": {
                    "type": "boolean",
                    "description": "It added to the evidence (a new or renewed reporter within "
                    "the daily cap); otherwise it was only kept.",
                },
            },
        },
        "ReportListing": {
            "type": "object",
            "required": ["number", "reports", "next_cursor"],
            "additionalProperties": False,
            "properties": {
                "number": ref("E164"),
                "reports": {"type": "array", "items": ref("ListedReport")},
                "next_cursor": NEXT_CURSOR,
            },
        },
        "QueueEntry": {
            **SCHEMAS["NumberAnswer"],
            "description": "A number in the review queue: its answer now, and its open appeal.",
            "required": [*SCHEMAS["NumberAnswer"]["required"], "open_appeal_id"],
            "properties": {
                **SCHEMAS["NumberAnswer"]["properties"],
                "open_appeal_id": nullable({"type": "integer", "minimum": 1}),
            },
        },
        "Queue": {
            "type": "object",
            "required": ["numbers", "next_cursor"],
            "additionalProperties": False,
            "properties": {
                "numbers": {"type": "array", "items": ref("QueueEntry")},
                "next_cursor": NEXT_CURSOR,
            },
        },
        "AppealRequest": {
            "type": "object",
            "required": ["number", "contact", "reason"],
            "properties": {
                "number": ref("WrittenNumber"),
                "contact": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_CONTACT_CHARS,
                    "description": "How an analyst can reach the owner (phone, e-mail).",
                },
                "reason": {"type": "string", "minLength": 1, "maxLength": MAX_REASON_CHARS},
            },
        },
        "Appeal": {
            "type": "object",
            "required": [
                "id",
                "number",
                "contact",
                "reason",
                "status",
                "submitted_by",
                "created_at",
                "resolved_by",
                "resolved_at",
                "resolution_note",
            ],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "integer", "minimum": 1},
                "number": ref("E164"),
                "contact": {"type": "string"},
                "reason": {"type": "string"},
                "status": {"type": "string", "enum": ["open", "accepted", "rejected"]},
                "submitted_by": {"type": "string"},
                "created_at": TIMESTAMP,
                "resolved_by": nullable({"type": "string"}),
                "resolved_at": nullable(TIMESTAMP),
                "resolution_note": nullable({"type": "string"}),
            },
        },
        "AppealAnswer": {
            "type": "object",
            "required": ["appeal"],
            "additionalProperties": False,
            "properties": {"appeal": ref("Appeal")},
        },
        "AppealList": {
            "type": "object",
            "required": ["appeals", "next_cursor"],
            "additionalProperties": False,
            "properties": {
                "appeals": {"type": "array", "items": ref("Appeal")},
                "next_cursor": NEXT_CURSOR,
            },
        },
        "AppealDecision": {
            "type": "object",
            "required": ["status", "note"],
            "properties": {
                "status": {"type": "string", "enum": ["accepted", "rejected"]},
                "note": {"type": "string", "minLength": 1, "maxLength": MAX_NOTE_CHARS},
            },
        },
        "AppealDecisionAnswer": {
            "type": "object",
            "required": ["appeal", "number", "change"],
            "additionalProperties": False,
            "properties": {
                "appeal": ref("Appeal"),
                "number": nullable(ref("NumberAnswer")),
                "change": nullable(ref("AuditEntry")),
            },
        },
        "ProtectedRequest": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_NAME_CHARS,
                    "description": "Whose line it is ('Công an TP Hà Nội', 'Vietcombank').",
                },
                "note": nullable({"type": "string", "maxLength": MAX_NOTE_CHARS}),
            },
        },
        "ProtectedNumber": {
            "type": "object",
            "required": ["number", "name", "note", "updated_by", "updated_at"],
            "additionalProperties": False,
            "properties": {
                "number": ref("E164"),
                "name": {"type": "string"},
                "note": nullable({"type": "string"}),
                "updated_by": {"type": "string"},
                "updated_at": TIMESTAMP,
            },
        },
        "ProtectedAnswer": {
            "type": "object",
            "required": ["protected"],
            "additionalProperties": False,
            "properties": {"protected": ref("ProtectedNumber")},
        },
        "ProtectedList": {
            "type": "object",
            "required": ["protected", "next_cursor"],
            "additionalProperties": False,
            "properties": {
                "protected": {"type": "array", "items": ref("ProtectedNumber")},
                "next_cursor": NEXT_CURSOR,
            },
        },
    }
)


def query_parameter(name: str, description: str, schema: Schema) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


PAGE_PARAMETERS = [
    query_parameter(
        "limit",
        f"Items per page, 1 to {MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE}).",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
    ),
    query_parameter("cursor", "The next_cursor of the previous page.", {"type": "string"}),
]
PAGE_ERRORS = "invalid_limit, invalid_cursor"

REVIEW_PATHS: dict[str, Schema] = {
    "/v1/numbers": {
        "get": operation(
            "reviewQueue",
            "The review queue",
            "Numbers for analysts, filtered and ordered, keyset-paginated (a page costs the "
            "same however deep it is; numbers added meanwhile never shift later pages).",
            tag="analysts",
            roles=("analyst",),
            parameters=[
                query_parameter("status", "Only numbers in this status.", ref("NumberStatus")),
                query_parameter(
                    "category", "Only numbers reported at least once in it.", ref("Category")
                ),
                query_parameter(
                    "verdict", "Only numbers with this stored verdict.", ref("Verdict")
                ),
                query_parameter(
                    "appeal", "open: only numbers with an open appeal.", {"enum": ["open"]}
                ),
                query_parameter(
                    "order",
                    "recent (last report first, default), reporters (most distinct reporters "
                    "first) or heat (most active now first).",
                    {"enum": ["recent", "reporters", "heat"]},
                ),
                *PAGE_PARAMETERS,
            ],
            responses={
                "200": json_response("One page.", ref("Queue")),
                **errors(
                    e400="invalid_status, invalid_category, invalid_verdict, invalid_appeal, "
                    f"invalid_order, {PAGE_ERRORS}."
                ),
            },
        )
    },
    "/v1/numbers/{number}/status": {
        "put": operation(
            "setStatus",
            "Decide a number's status",
            "confirmed: always block; cleared: allow until people who had not reported it "
            "before report it; allowlisted: never blocked (reports still kept); reported: back "
            "to the evidence. Audited (who, when, from, to, why) and sent to every node.",
            tag="analysts",
            roles=("analyst",),
            parameters=[NUMBER_PARAMETER],
            request=json_request("StatusRequest"),
            responses={
                "200": json_response("The number now, and the audit entry.", ref("StatusAnswer")),
                **errors(
                    e400=NUMBER_ERRORS.removesuffix(".") + "; invalid_json, missing_field, "
                    "invalid_field, invalid_status, text_too_long."
                ),
            },
        )
    },
    "/v1/numbers/{number}/history": {
        "get": operation(
            "numberHistory",
            "The audit trail of a number",
            "Status changes, protection changes and appeals, oldest first.",
            tag="analysts",
            roles=("analyst",),
            parameters=[NUMBER_PARAMETER, *PAGE_PARAMETERS],
            responses={
                "200": json_response("One page.", ref("History")),
                **errors(e400=NUMBER_ERRORS.removesuffix(".") + f"; {PAGE_ERRORS}."),
            },
        )
    },
    "/v1/numbers/{number}/reports": {
        "get": operation(
            "numberReports",
            "The reports behind a verdict",
            "Newest first; reporters masked, with a pseudonym per reporter.",
            tag="analysts",
            roles=("analyst",),
            parameters=[NUMBER_PARAMETER, *PAGE_PARAMETERS],
            responses={
                "200": json_response("One page.", ref("ReportListing")),
                **errors(e400=NUMBER_ERRORS.removesuffix(".") + f"; {PAGE_ERRORS}."),
            },
        )
    },
}

APPEAL_PATHS: dict[str, Schema] = {
    "/v1/appeals": {
        "post": operation(
            "submitAppeal",
            "Appeal a verdict",
            "For the owner of a flagged number (the lookup's appeal_url leads here): no API "
            "key, rate-limited per client address. One open appeal per number; the same "
            "appeal again returns the open one (200).",
            tag="appeals",
            roles=None,
            request=json_request("AppealRequest"),
            responses={
                "201": json_response("The appeal is open.", ref("AppealAnswer")),
                "200": json_response("The same appeal was already open.", ref("AppealAnswer")),
                **errors(
                    e400=NUMBER_ERRORS.removesuffix(".") + " (with 'field'); invalid_json, "
                    "invalid_field, missing_field, text_too_long.",
                    e404="number_not_listed: nothing is known about the number.",
                    e409="appeal_already_open: another appeal of this number is open.",
                    e429="rate_limited: retry after Retry-After seconds.",
                ),
            },
        ),
        "get": operation(
            "listAppeals",
            "Appeals",
            "Oldest first: the analysts' work list (?status=open).",
            tag="appeals",
            roles=("analyst",),
            parameters=[
                query_parameter(
                    "status",
                    "Only appeals in this state.",
                    {"enum": ["open", "accepted", "rejected"]},
                ),
                *PAGE_PARAMETERS,
            ],
            responses={
                "200": json_response("One page.", ref("AppealList")),
                **errors(e400=f"invalid_status, {PAGE_ERRORS}."),
            },
        ),
    },
    "/v1/appeals/{id}": {
        "put": operation(
            "decideAppeal",
            "Decide an appeal",
            "accepted also clears the number (unless allowlisted), with its own audit entry.",
            tag="appeals",
            roles=("analyst",),
            parameters=[
                {
                    "name": "id",
                    "in": "path",
                    "required": True,
                    "description": "The appeal's id.",
                    "schema": {"type": "integer", "minimum": 1},
                }
            ],
            request=json_request("AppealDecision"),
            responses={
                "200": json_response("The appeal decided.", ref("AppealDecisionAnswer")),
                **errors(
                    e400="invalid_json, invalid_field, missing_field, invalid_status, "
                    "text_too_long.",
                    e404="appeal_not_found.",
                    e409="appeal_resolved: it was already decided.",
                ),
            },
        )
    },
}

PROTECTED_PATHS: dict[str, Schema] = {
    "/v1/protected": {
        "get": operation(
            "listProtected",
            "Protected numbers",
            "In number order. Reports never push these to block; a call showing one without "
            "A attestation is answered as spoofed.",
            tag="protected",
            roles=("analyst",),
            parameters=PAGE_PARAMETERS,
            responses={
                "200": json_response("One page.", ref("ProtectedList")),
                **errors(e400=f"{PAGE_ERRORS}."),
            },
        )
    },
    "/v1/protected/{number}": {
        "put": operation(
            "protectNumber",
            "Protect a number",
            "Or change its name and note. Audited and sent to every node.",
            tag="protected",
            roles=("admin",),
            parameters=[NUMBER_PARAMETER],
            request=json_request("ProtectedRequest"),
            responses={
                "201": json_response("Now protected.", ref("ProtectedAnswer")),
                "200": json_response(
                    "Already protected; name and note as given.", ref("ProtectedAnswer")
                ),
                **errors(
                    e400=NUMBER_ERRORS.removesuffix(".") + "; invalid_json, invalid_field, "
                    "missing_field, text_too_long."
                ),
            },
        ),
        "delete": operation(
            "unprotectNumber",
            "Stop protecting a number",
            'An optional JSON body {"note"} says why (kept in the audit trail).',
            tag="protected",
            roles=("admin",),
            parameters=[NUMBER_PARAMETER],
            responses={
                "200": json_response("No longer protected.", ref("ProtectedAnswer")),
                **errors(
                    e400=NUMBER_ERRORS.removesuffix(".") + "; invalid_json, invalid_field, "
                    "text_too_long.",
                    e404="not_protected.",
                ),
            },
        ),
    },
}

# Every table of paths; a new concern adds its own table here.
PATHS: tuple[dict[str, Schema], ...] = (
    LOOKUP_PATHS,
    REPORT_PATHS,
    SMS_PATHS,
    LIST_PATHS,
    OPERATIONS_PATHS,
    DOCUMENTATION_PATHS,
    REVIEW_PATHS,
    APPEAL_PATHS,
    PROTECTED_PATHS,
)

TAGS = [
    {"name": "lookups", "description": "Carriers and apps asking about a caller."},
    {"name": "reports", "description": "Citizens, operators and carriers reporting numbers."},
    {"name": "sms", "description": "The 156/5656 SMS channel, through the SMS gateway."},
    {"name": "lists", "description": "Private lookups by hash prefix, and offline copies."},
    {"name": "operations", "description": "Health, readiness and metrics for operators."},
    {"name": "documentation", "description": "This description and the pages made from it."},
    {"name": "analysts", "description": "Review queue, statuses, audit trail, reports."},
    {"name": "appeals", "description": "Owners of flagged numbers asking for a review."},
    {"name": "protected", "description": "Numbers reports never block; spoofing of them."},
]

DESCRIPTION = """\
Scam phone number reputation: report intake and sub-millisecond lookups.

Every number may be written as people write it (`0912 345 678`, `+84 912-345-678`,
`tel:0912345678`); answers use E.164 (`+84912345678`). Every error is
`{"error": {"code", "message"}}` with a 4xx or 5xx status; the `code` is the
contract (see `ErrorCode`), the message is for people. Each operation lists the
roles of API key that may call it (`x-roles`).
"""


@cache
def spec() -> Schema:
    """The whole OpenAPI document."""
    paths: dict[str, Schema] = {}
    for table in PATHS:
        for path, item in table.items():
            if path in paths:
                raise ValueError(f"{path} is described twice")
            paths[path] = item
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "reputation",
            "version": __version__,
            "summary": "Scam phone number reputation service",
            "description": DESCRIPTION,
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "tags": TAGS,
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "parameters": PARAMETERS,
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key: `Authorization: Bearer <key>`.",
                }
            },
        },
    }


@cache
def spec_bytes() -> bytes:
    return json.dumps(spec(), ensure_ascii=False, indent=1).encode()


@public
async def get_openapi(request: web.Request) -> web.Response:
    """``GET /openapi.json``: the OpenAPI description of this API."""
    return web.Response(body=spec_bytes(), content_type="application/json", charset="utf-8")
