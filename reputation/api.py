"""HTTP handlers of the v1 API, and the middleware every request passes."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CONTENT_TYPE_LATEST

from reputation import (
    apipage,
    appeals,
    intake,
    lists_api,
    openapi,
    protected,
    review,
    sms_intake,
    statuspage,
)
from reputation.appkeys import (
    FEED,
    GUARD,
    HEALTH,
    LOOKUPS,
    METRICS,
    SETTINGS,
    STORE,
    WORKER_LINK,
)
from reputation.attestation import call_attestation
from reputation.auth import Guard, Handler, admit, public, requires
from reputation.constants import CHANNELS, MAX_BATCH_NUMBERS, RETRY_AFTER_SECONDS
from reputation.encoding import dumps, encode_answer, encode_results, encode_unreported
from reputation.errors import BadRequest, InvalidNumber, PayloadTooLarge, ReputationError
from reputation.exposition import node_exposition
from reputation.jsonio import encoded_json_response, json_response, read_json_object
from reputation.logs import REQUEST_ID_HEADER, assign_request_id
from reputation.lookup import BLOOM, Answer, Lookups, answer_body
from reputation.metrics import Metrics
from reputation.normalize import normalize
from reputation.reports import parse_report
from reputation.verdict import NOT_REPORTED, Judgement

logger = logging.getLogger(__name__)

# Codes for the errors aiohttp raises itself (unknown route, wrong method, ...).
_HTTP_ERROR_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    431: "headers_too_large",
}


# Refusals after which the rest of the request is not worth reading: close.
_CLOSE_AFTER = frozenset({408, 413, 414})


def error_response(
    status: int, error: dict[str, Any], headers: Mapping[str, str] | None = None
) -> web.Response:
    response = json_response({"error": error}, status=status)
    if headers:
        response.headers.update(headers)
    if status in _CLOSE_AFTER:
        response.force_close()
    return response


def front_middleware(guard: Guard) -> Middleware:
    """The one middleware of every request: its id, the security checks, errors as JSON.

    One layer rather than one per concern: aiohttp wraps each middleware
    around every request, and a switch asks thousands of times a second.
    """

    @web.middleware
    async def front(request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = assign_request_id(request)
        try:
            await admit(guard, request)
            response = await handler(request)
        except Exception as exc:
            response = error_answer(request, exc)
        response.headers[REQUEST_ID_HEADER] = request_id
        return response

    return front


def error_answer(request: web.Request, exc: Exception) -> web.Response:
    """Every failure becomes ``{"error": {"code", "message"}}``: never HTML, never a traceback.

    Called while ``exc`` is being handled; an HTTP redirect is raised again.
    """
    if isinstance(exc, ReputationError):
        return error_response(exc.status, exc.to_dict(), exc.headers)
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        code = _HTTP_ERROR_CODES.get(exc.status, "http_error")
        return error_response(exc.status, {"code": code, "message": exc.reason})
    if isinstance(exc, (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)):
        logger.exception("database call failed")
        request.app[METRICS].database_errors.labels(_route_name(request)).inc()
        return error_response(
            503,
            {"code": "database_unavailable", "message": "The database is unavailable."},
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    logger.exception("unexpected error")
    return error_response(500, {"code": "internal_error", "message": "Internal error."})


def _route_name(request: web.Request) -> str:
    """The route pattern (never the path, which may hold a phone number)."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unknown"


def _region(request: web.Request) -> str:
    return request.app[SETTINGS].region


def number_json(request: web.Request, answer: Answer) -> dict[str, Any]:
    """The lookup object of a number a report just changed (not a lookup: not counted as one)."""
    lookups = request.app[LOOKUPS]
    judgement = lookups.judge(answer)
    return answer_body(answer, judgement, lookups.appeal_url(answer.e164, judgement))


def answer_bytes(lookups: Lookups, answer: Answer, attestation: str | None = None) -> bytes:
    """The lookup object of one answer, encoded and counted in the lookup metrics."""
    judgement = lookups.judge(answer, attestation)
    _count(lookups.metrics, answer.layer, judgement)
    return encode_answer(answer, judgement, lookups.appeal_url(answer.e164, judgement))


def _count(metrics: Metrics, layer: str, judgement: Judgement, lookups: int = 1) -> None:
    metrics.lookup_by[layer, judgement.verdict].inc(lookups)
    for reason in judgement.reasons:
        metrics.verdict_reason[reason].inc(lookups)


@requires("lookup", "analyst")
async def get_number(request: web.Request) -> web.Response:
    """``GET /v1/numbers/{number}``: is this number reported, and what should be done?

    ``?attestation=A|B|C|none`` or ``?verstat=...``: how the carrier verified
    the caller ID of the call being set up (see ``attestation.py``).
    """
    started = time.perf_counter()
    lookups = request.app[LOOKUPS]
    metrics = lookups.metrics
    try:
        e164 = normalize(request.match_info["number"], lookups.settings.region)
    except InvalidNumber as exc:
        metrics.lookup_errors.labels(exc.code).inc()
        raise
    attestation = call_attestation(request.query) if request.query_string else None
    if attestation is None and lookups.certainly_unreported(e164):
        # What a switch asks most: prepared bytes, no answer object, no clock.
        body = encode_unreported(e164)
        _count(metrics, BLOOM, NOT_REPORTED)
    else:
        answer = lookups.from_memory(e164) or await lookups.lookup(e164)
        body = answer_bytes(lookups, answer, attestation)
    response = encoded_json_response(body)
    metrics.lookup_seconds.observe(time.perf_counter() - started)
    return response


@requires("lookup", "analyst")
async def post_lookups(request: web.Request) -> web.Response:
    """``POST /v1/lookups``: many numbers at once; a bad one does not fail the others."""
    body = await read_json_object(request)
    numbers = body.get("numbers")
    if not isinstance(numbers, list):
        raise BadRequest("'numbers' must be a list.", code="invalid_field", field="numbers")
    if len(numbers) > MAX_BATCH_NUMBERS:
        raise PayloadTooLarge(
            f"At most {MAX_BATCH_NUMBERS} numbers per batch.", code="batch_too_large"
        )
    # The call itself paid for one number: a batch costs one per number.
    request.app[GUARD].charge(request, max(0, len(numbers) - 1))
    lookups = request.app[LOOKUPS]
    region = lookups.settings.region
    certainly_unreported = lookups.certainly_unreported
    # Each number's encoded answer, in order (empty until memory or Postgres answers it).
    results: list[bytes] = []
    # The numbers the filter cannot answer alone, and their places in the results.
    asked: list[str] = []
    waiting: dict[str, list[int]] = {}
    errors: dict[str, int] = {}
    unreported = 0
    for item in numbers:
        if not isinstance(item, str):
            error = BadRequest("Each number must be a string.", code="invalid_field")
            results.append(dumps({"input": item, "error": error.to_dict()}))
            continue
        try:
            e164 = normalize(item, region)
        except InvalidNumber as exc:
            errors[exc.code] = errors.get(exc.code, 0) + 1
            results.append(dumps({"input": item, "error": exc.to_dict()}))
            continue
        if certainly_unreported(e164):
            results.append(encode_unreported(e164))
            unreported += 1
        else:
            asked.append(e164)
            waiting.setdefault(e164, []).append(len(results))
            results.append(b"")
    metrics = lookups.metrics
    # Counters move once per batch, not per number.
    for code, count in errors.items():
        metrics.lookup_errors.labels(code).inc(count)
    if unreported:
        _count(metrics, BLOOM, NOT_REPORTED, unreported)
    if waiting:
        answers = await lookups.lookup_many(asked)
        now = lookups.clock()  # one instant for the whole batch
        for e164, positions in waiting.items():
            answer = answers[e164]
            judgement = lookups.judge(answer, now=now)
            _count(metrics, answer.layer, judgement, len(positions))
            encoded = encode_answer(answer, judgement, lookups.appeal_url(e164, judgement))
            for position in positions:
                results[position] = encoded
    return encoded_json_response(encode_results(results))


@requires("report", "analyst")
async def post_report(request: web.Request) -> web.Response:
    """``POST /v1/reports``: keep a report; a replayed Idempotency-Key counts nothing twice."""
    metrics = request.app[METRICS]
    channel = "unknown"
    try:
        body = await read_json_object(request)
        if body.get("channel") in CHANNELS:
            channel = body["channel"]
        report = parse_report(body, _region(request), request.headers.get("Idempotency-Key"))
        request.app[GUARD].limit_reporter(report.reporter, report.channel)
    except ReputationError as exc:
        metrics.reports_rejected.labels(channel, exc.code).inc()
        raise
    recorded = await intake.accept_report(request.app, report)
    lookups = request.app[LOOKUPS]
    if isinstance(recorded, intake.QueuedReport):
        known = lookups.from_memory(report.e164) or lookups.from_last_known(report.e164)
        body = {
            "queued": True,
            "idempotency_key": recorded.report.idempotency_key,
            "report": recorded.to_json(),
            "number": number_json(request, dataclasses.replace(known, degraded=True)),
        }
        return json_response(body, status=202)
    if not recorded.replayed:
        lookups.remember(recorded.number, recorded.change_seq)
        metrics.report_by[report.channel, report.category].inc()
    answer = Answer(recorded.number.e164, recorded.number, "database")
    body = {"report": recorded.report.to_json(), "number": number_json(request, answer)}
    return json_response(body, status=200 if recorded.replayed else 201)


@public
async def get_metrics(request: web.Request) -> web.Response:
    """``GET /metrics``: Prometheus text exposition of this node (every worker)."""
    body = await node_exposition(request.app[WORKER_LINK], request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@public
async def get_healthz(request: web.Request) -> web.Response:
    """``GET /healthz``: the process is alive."""
    return json_response({"status": "alive"})


@public
async def get_readyz(request: web.Request) -> web.Response:
    """``GET /readyz``: 200 while the node can answer lookups (and ranges), even with Postgres down.

    A load balancer must not pull every node because the database is away:
    lookups are then answered from memory, and the body says ``degraded``.
    """
    app = request.app
    feed = app[FEED]
    ranges = lists_api.range_index_state(app)
    loaded = app[LOOKUPS].loaded and feed.started and ranges != "loading"
    health = app[HEALTH]
    database = health.up
    if health.worth_trying():
        answered = await app[STORE].ping()
        if answered is not None:  # a slow answer changes nothing
            database = answered
            if answered:
                health.succeeded()
            else:
                health.failed()
    body = {
        "status": ("ready" if database else "degraded") if loaded else "not_ready",
        "bloom_filter": "loaded" if loaded else "loading",
        "range_index": ranges,
        "database": "up" if database else "down",
        "change_feed": "listening" if feed.listening else "polling",
        "auth": "on" if request.app[SETTINGS].auth else "off",
    }
    if not request.app[SETTINGS].auth:
        body["warning"] = "authentication is off: anyone who can reach this node may call it"
    return json_response(body, status=200 if loaded else 503)


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/v1/numbers/{number}", get_number)
    app.router.add_post("/v1/lookups", post_lookups)
    app.router.add_post("/v1/reports", post_report)
    app.router.add_get("/v1/ranges", lists_api.get_ranges)
    app.router.add_get("/v1/ranges/{prefix}", lists_api.get_range)
    app.router.add_get("/v1/export", lists_api.get_export)
    app.router.add_get("/v1/bloom", lists_api.get_bloom)
    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/healthz", get_healthz)
    app.router.add_get("/readyz", get_readyz)
    app.router.add_get("/openapi.json", openapi.get_openapi)
    app.router.add_get("/docs", apipage.get_api_page)
    app.router.add_post("/v1/sms/inbound", sms_intake.post_sms_inbound)
    app.router.add_get("/", statuspage.get_status_page)
    app.router.add_get("/v1/numbers", review.get_queue)
    app.router.add_put("/v1/numbers/{number}/status", review.put_status)
    app.router.add_get("/v1/numbers/{number}/history", review.get_history)
    app.router.add_get("/v1/numbers/{number}/reports", review.get_reports)
    app.router.add_post("/v1/appeals", appeals.post_appeal)
    app.router.add_get("/v1/appeals", appeals.get_appeals)
    app.router.add_put(r"/v1/appeals/{id:\d{1,20}}", appeals.put_appeal)
    app.router.add_get("/v1/protected", protected.get_protected)
    app.router.add_put("/v1/protected/{number}", protected.put_protected)
    app.router.add_delete("/v1/protected/{number}", protected.delete_protected)
