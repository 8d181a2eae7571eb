"""What analysts do with numbers: the review queue, the reports behind a verdict,
status decisions and their audit trail.

Statuses: ``reported`` (automatic), ``confirmed`` (always block), ``cleared``
(allow until people who had not reported it before the clearing do),
``allowlisted`` (never blocked; reports are still kept). Every change is one
transaction: the new status, an audit entry (who, when, from, to, why) and a
change-log row for the other nodes.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from aiohttp import web

from reputation import privacy
from reputation.appkeys import LOOKUPS, METRICS, SETTINGS, STORE
from reputation.auth import principal, requires
from reputation.constants import CATEGORIES, MAX_NOTE_CHARS, STATUSES
from reputation.errors import BadRequest
from reputation.jsonio import json_response, read_json_object
from reputation.lookup import Answer, answer_body
from reputation.metrics import VERDICTS
from reputation.normalize import normalize
from reputation.pagination import decode_cursor, encode_cursor, invalid_cursor, page_limit
from reputation.records import NumberRecord, QueueEntry
from reputation.reports import optional_string

QUEUE_ORDERS = ("recent", "reporters", "heat")


def path_number(request: web.Request) -> str:
    """The ``{number}`` of the path, in E.164 (or a coded 400)."""
    return normalize(request.match_info["number"], request.app[SETTINGS].region)


def number_json(request: web.Request, record: NumberRecord) -> dict[str, Any]:
    """A number as a lookup would answer it now (not counted as a lookup in the metrics)."""
    lookups = request.app[LOOKUPS]
    answer = Answer(record.e164, record, "database")
    judgement = lookups.judge(answer)
    return answer_body(answer, judgement, lookups.appeal_url(record.e164, judgement))


def choice(query: Any, name: str, allowed: tuple[str, ...], code: str) -> str | None:
    """An optional query parameter that must be one of ``allowed`` (else 400 ``code``)."""
    value = query.get(name)
    if value is None or value == "":
        return None
    if value not in allowed:
        raise BadRequest(f"'{name}' must be one of {', '.join(allowed)}.", code=code, field=name)
    return str(value)


def required_text(body: dict[str, Any], field: str, limit: int) -> str:
    """A non-empty text field of at most ``limit`` characters, trimmed."""
    value = (optional_string(body, field) or "").strip()
    if not value:
        raise BadRequest(f"'{field}' is required.", code="missing_field", field=field)
    if len(value) > limit:
        raise BadRequest(
            f"'{field}' is limited to {limit} characters.", code="text_too_long", field=field
        )
    return value


@requires("analyst")
async def put_status(request: web.Request) -> web.Response:
    """``PUT /v1/numbers/{number}/status``: an analyst's decision, with the reason for it."""
    e164 = path_number(request)
    body = await read_json_object(request)
    status = optional_string(body, "status")
    if status is None:
        raise BadRequest("'status' is required.", code="missing_field", field="status")
    if status not in STATUSES:
        raise BadRequest(
            f"'status' must be one of {', '.join(STATUSES)}.", code="invalid_status", field="status"
        )
    note = required_text(body, "note", MAX_NOTE_CHARS)
    record, entry = await request.app[STORE].set_status(e164, status, note, principal(request).name)
    request.app[LOOKUPS].remember(record)
    assert entry.from_value is not None
    request.app[METRICS].status_change[entry.from_value, status].inc()
    return json_response({"number": number_json(request, record), "change": entry.to_json()})


@requires("analyst")
async def get_history(request: web.Request) -> web.Response:
    """``GET /v1/numbers/{number}/history``: the audit trail of a number, oldest first."""
    e164 = path_number(request)
    limit = page_limit(request.query)
    after = _id_cursor(request, "history")
    entries = await request.app[STORE].history(e164, after, limit + 1)
    page, more = entries[:limit], len(entries) > limit
    return json_response(
        {
            "number": e164,
            "history": [entry.to_json() for entry in page],
            "next_cursor": encode_cursor("history", page[-1].id) if more else None,
        }
    )


@requires("analyst")
async def get_reports(request: web.Request) -> web.Response:
    """``GET /v1/numbers/{number}/reports``: the reports behind a verdict, newest first.

    Reporters are shown masked (``+84 98x xxx x01``) with a pseudonym that
    tells whether two reports came from the same person; ``counted`` says
    whether the report added to the evidence (a new or renewed reporter
    within the daily cap).
    """
    e164 = path_number(request)
    limit = page_limit(request.query)
    before = _id_cursor(request, "reports")
    reports = await request.app[STORE].number_reports(e164, before, limit + 1)
    page, more = reports[:limit], len(reports) > limit
    return json_response(
        {
            "number": e164,
            "reports": [
                {
                    "id": r.id,
                    "reporter": r.reporter_masked,
                    "reporter_id": privacy.pseudonym(r.reporter_hash),
                    "channel": r.channel,
                    "category": r.category,
                    "content": r.content,
                    "received_at": r.received_at.isoformat(),
                    "counted": r.counted,
                }
                for r in page
            ],
            "next_cursor": encode_cursor("reports", page[-1].id) if more else None,
        }
    )


def _id_cursor(request: web.Request, listing: str) -> int | None:
    key = decode_cursor(request.query, listing)
    if key is None:
        return None
    if len(key) != 1 or not isinstance(key[0], int) or isinstance(key[0], bool):
        raise invalid_cursor()
    return key[0]


@requires("analyst")
async def get_queue(request: web.Request) -> web.Response:
    """``GET /v1/numbers``: the review queue, filtered and ordered, one keyset page at a time.

    ``status``, ``category`` (reported at least once in it), ``verdict`` (as
    stored), ``appeal=open`` (an appeal waits); ``order`` = ``recent`` (last
    report first, the default), ``reporters`` or ``heat`` (most active now).
    """
    query = request.query
    order = choice(query, "order", QUEUE_ORDERS, "invalid_order") or "recent"
    status = choice(query, "status", STATUSES, "invalid_status")
    category = choice(query, "category", CATEGORIES, "invalid_category")
    verdict = choice(query, "verdict", VERDICTS, "invalid_verdict")
    appealed = choice(query, "appeal", ("open",), "invalid_appeal") == "open"
    limit = page_limit(query)
    after = _queue_cursor(query, order)
    entries = await request.app[STORE].review_queue(
        order,
        status=status,
        category=category,
        verdict=verdict,
        appealed=appealed,
        after=after,
        limit=limit + 1,
    )
    page, more = entries[:limit], len(entries) > limit
    items = [_queue_item(request, entry) for entry in page]
    next_cursor = encode_cursor("queue", order, *_queue_key(page[-1], order)) if more else None
    return json_response({"numbers": items, "next_cursor": next_cursor})


def _queue_item(request: web.Request, entry: QueueEntry) -> dict[str, Any]:
    item = number_json(request, entry.record)
    item["open_appeal_id"] = entry.open_appeal_id
    return item


def _queue_key(entry: QueueEntry, order: str) -> tuple[Any, str]:
    """The sort key of an entry, as it goes into a cursor (JSON)."""
    record = entry.record
    if order == "reporters":
        return record.reporters, record.e164
    if order == "heat":
        heat_key = record.heat_key
        return (None if heat_key == -math.inf else heat_key), record.e164
    last = record.last_reported_at
    return (last.isoformat() if last is not None else None), record.e164


def _queue_cursor(query: Any, order: str) -> tuple[Any, str] | None:
    """The (key, e164) after which the page starts, read back from a cursor of this order."""
    key = decode_cursor(query, "queue")
    if key is None:
        return None
    if len(key) != 3 or key[0] != order or not isinstance(key[2], str):
        raise invalid_cursor()
    value, e164 = key[1], key[2]
    try:
        if order == "reporters":
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(value)
            return value, e164
        if order == "heat":
            if value is None:
                return -math.inf, e164
            if not isinstance(value, float | int) or isinstance(value, bool):
                raise ValueError(value)
            return float(value), e164
        if value is None:  # never reported: sorted as -infinity, after every report
            return datetime.min, e164
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError(value)
        return moment, e164
    except (ValueError, TypeError):
        raise invalid_cursor() from None
