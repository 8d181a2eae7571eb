"""Appeals: the owner of a flagged number asks for a review, and an analyst decides.

``POST /v1/appeals`` is public: the owner of a wrongly flagged number has no
API key (carriers point them here with the lookup's ``appeal_url``, e.g. in
the SIP ``Call-Info`` of a 608 rejection, RFC 8688). Each client address is
rate-limited (``REPUTATION_PUBLIC_RATE_LIMIT``), a number has at most one open
appeal, and the same appeal sent again is answered with the open one, so a
retry is safe. Open appeals show in the review queue (``?appeal=open``);
accepting one clears the number.
"""

from __future__ import annotations

from aiohttp import web

from reputation.appkeys import LOOKUPS, METRICS, SETTINGS, STORE
from reputation.auth import principal, public, requires
from reputation.constants import MAX_CONTACT_CHARS, MAX_NOTE_CHARS, MAX_REASON_CHARS
from reputation.errors import BadRequest, NotFound
from reputation.jsonio import json_response, read_json_object
from reputation.pagination import decode_cursor, encode_cursor, invalid_cursor, page_limit
from reputation.reports import number_field, optional_string
from reputation.review import choice, number_json, required_text

APPEAL_STATUSES = ("open", "accepted", "rejected")
DECISIONS = ("accepted", "rejected")
_MAX_ID = 2**63 - 1


@public
async def post_appeal(request: web.Request) -> web.Response:
    """``POST /v1/appeals`` ``{"number", "contact", "reason"}``: ask for a review of a verdict."""
    body = await read_json_object(request)
    e164 = number_field(body, "number", request.app[SETTINGS].region)
    if e164 is None:
        raise BadRequest("'number' is required.", code="missing_field", field="number")
    contact = required_text(body, "contact", MAX_CONTACT_CHARS)
    reason = required_text(body, "reason", MAX_REASON_CHARS)
    appeal, created = await request.app[STORE].open_appeal(
        e164, contact, reason, principal(request).name
    )
    if created:
        metrics = request.app[METRICS]
        metrics.appeal_by["opened"].inc()
        metrics.open_appeals.inc()
    return json_response({"appeal": appeal.to_json()}, status=201 if created else 200)


@requires("analyst")
async def get_appeals(request: web.Request) -> web.Response:
    """``GET /v1/appeals?status=open``: appeals, oldest first (the analysts' work list)."""
    status = choice(request.query, "status", APPEAL_STATUSES, "invalid_status")
    limit = page_limit(request.query)
    key = decode_cursor(request.query, "appeals")
    if key is not None and (len(key) != 1 or not isinstance(key[0], int)):
        raise invalid_cursor()
    after = key[0] if key is not None else None
    appeals = await request.app[STORE].appeals(status, after, limit + 1)
    page, more = appeals[:limit], len(appeals) > limit
    return json_response(
        {
            "appeals": [appeal.to_json() for appeal in page],
            "next_cursor": encode_cursor("appeals", page[-1].id) if more else None,
        }
    )


@requires("analyst")
async def put_appeal(request: web.Request) -> web.Response:
    """``PUT /v1/appeals/{id}`` ``{"status": "accepted"|"rejected", "note"}``: decide an appeal.

    Accepting clears the number (unless it is allowlisted, which already allows
    it), with its own audit entry.
    """
    appeal_id = int(request.match_info["id"])
    if appeal_id > _MAX_ID:
        raise NotFound("No such appeal.", code="appeal_not_found")
    body = await read_json_object(request)
    decision = optional_string(body, "status")
    if decision is None:
        raise BadRequest("'status' is required.", code="missing_field", field="status")
    if decision not in DECISIONS:
        raise BadRequest(
            "'status' must be accepted or rejected.", code="invalid_status", field="status"
        )
    note = required_text(body, "note", MAX_NOTE_CHARS)
    appeal, cleared = await request.app[STORE].resolve_appeal(
        appeal_id, decision, note, principal(request).name
    )
    metrics = request.app[METRICS]
    metrics.appeal_by[decision].inc()
    metrics.open_appeals.dec()
    body = {"appeal": appeal.to_json(), "number": None, "change": None}
    if cleared is not None:
        record, entry = cleared
        request.app[LOOKUPS].remember(record)
        assert entry.from_value is not None
        metrics.status_change[entry.from_value, "cleared"].inc()
        body["number"], body["change"] = number_json(request, record), entry.to_json()
    return json_response(body)
