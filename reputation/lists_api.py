"""HTTP handlers that publish the list: private hash-prefix ranges, versioned exports, the filter.

``GET /v1/ranges/{prefix}`` lets an app check a caller without telling the
service who called; ``GET /v1/export`` and ``GET /v1/bloom`` let a carrier or
an app keep an offline copy that answers locally and syncs by deltas.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import asyncpg
import xxhash
from aiohttp import web

from reputation.appkeys import EXPORT_SLOTS, LOOKUPS, METRICS, RANGES, SETTINGS, STORE
from reputation.auth import requires
from reputation.constants import RANGE_PREFIX_LENGTHS
from reputation.errors import BadRequest, NotFound, Unavailable
from reputation.listing import ListVersion
from reputation.ranges import RangeIndex, parse_prefix, recommended_prefix_length

logger = logging.getLogger(__name__)

# Seconds an export waits for a free slot before it is told to come back later.
EXPORT_SLOT_WAIT_SECONDS = 5.0
EXPORT_RETRY_AFTER_SECONDS = 10
_EXPORT_HEADERS = {
    "Content-Type": "application/x-ndjson; charset=utf-8",
    "Cache-Control": "no-store",
}


def _range_index(request: web.Request) -> RangeIndex:
    if not request.app[SETTINGS].ranges_index:
        raise NotFound("Private range lookups are turned off on this node.", code="ranges_disabled")
    ranges = request.app[RANGES].index
    if ranges is None:
        raise Unavailable("The range index is still loading; retry shortly.", code="ranges_loading")
    return ranges


def range_index_state(app: web.Application) -> str:
    """``loaded``, ``loading`` or ``off``: part of the node's readiness."""
    if not app[SETTINGS].ranges_index:
        return "off"
    return "loaded" if app[RANGES].index is not None else "loading"


def _not_modified(request: web.Request, etag: str) -> bool:
    """Whether the client's ``If-None-Match`` already names this answer."""
    wanted = request.if_none_match
    return wanted is not None and any(tag.value in ("*", etag) for tag in wanted)


@requires("lookup", "analyst")
async def get_ranges(request: web.Request) -> web.Response:
    """``GET /v1/ranges``: how to ask for a range, and the prefix length to use now."""
    ranges = _range_index(request)
    body = {
        "hash": "sha256",
        "input": "E.164 number with its '+', as UTF-8 (sha256(b'+84912345678'))",
        "prefix_lengths": list(RANGE_PREFIX_LENGTHS),
        "prefix_length": recommended_prefix_length(len(ranges)),
    }
    response = web.json_response(body)
    response.headers["Cache-Control"] = f"public, max-age={request.app[SETTINGS].ranges_max_age}"
    return response


@requires("lookup", "analyst")
async def get_range(request: web.Request) -> web.Response:
    """``GET /v1/ranges/{prefix}``: every listed number whose hash starts with ``prefix``."""
    prefix = parse_prefix(request.match_info["prefix"])
    if prefix is None:
        lengths = ", ".join(str(n) for n in RANGE_PREFIX_LENGTHS)
        raise BadRequest(
            f"The prefix must be {lengths} hexadecimal characters of the number's SHA-256.",
            code="invalid_prefix",
        )
    answer = _range_index(request).answer(prefix)
    request.app[METRICS].range_answers.inc()
    # no-transform: a proxy that compressed the answer would undo its padding.
    cache_control = f"public, max-age={request.app[SETTINGS].ranges_max_age}, no-transform"
    if _not_modified(request, answer.etag):
        response = web.Response(status=304)
    else:
        response = web.Response(body=answer.body, content_type="application/json")
    response.etag = answer.etag
    response.headers["Cache-Control"] = cache_control
    return response


def parse_version(raw: str | None) -> ListVersion | None:
    """The ``since`` of an export: absent, or a version this service handed out."""
    if raw is None:
        return None
    version = ListVersion.parse(raw)
    if version is None:
        raise BadRequest(
            "'since' must be the version returned by an earlier export, unchanged.",
            code="invalid_version",
            field="since",
        )
    return version


def _json_line(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode() + b"\n"


@requires("lookup", "analyst")
async def get_export(request: web.Request) -> web.StreamResponse:
    """``GET /v1/export[?since=VERSION]``: the published list, or what changed since a version.

    JSON lines: a header ``{"version", "since", "full"}``, one line per entry
    (``{"number", "verdict", "category", "reports", "reporters"}``) or deletion
    marker (``{"number", "deleted": true}``), then ``{"end": true, "entries": N}``.
    A stream without that last line was cut short and must not be applied.
    """
    since = parse_version(request.query.get("since"))
    if request.method == "HEAD":
        return web.Response(headers=_EXPORT_HEADERS)
    slots = request.app[EXPORT_SLOTS]
    try:
        async with asyncio.timeout(EXPORT_SLOT_WAIT_SECONDS):
            await slots.acquire()
    except TimeoutError:
        busy = Unavailable("Too many exports at once; retry later.", code="export_busy")
        return web.json_response(
            {"error": busy.to_dict()},
            status=busy.status,
            headers={"Retry-After": str(EXPORT_RETRY_AFTER_SECONDS)},
        )
    try:
        return await _stream_export(request, since)
    finally:
        slots.release()


async def _stream_export(request: web.Request, since: ListVersion | None) -> web.StreamResponse:
    metrics = request.app[METRICS]
    async with request.app[STORE].list_export(since) as export:
        response = web.StreamResponse(headers=_EXPORT_HEADERS)
        response.enable_compression()  # only if the client accepts gzip or deflate
        await response.prepare(request)
        metrics.exports.labels("full" if since is None else "delta").inc()
        header = {
            "version": export.version,
            "since": None if since is None else str(since),
            "full": since is None,
        }
        await response.write(_json_line(header))
        entries = 0

        async def send(lines: bytes) -> None:
            nonlocal entries
            entries += lines.count(b"\n")
            await response.write(lines)

        try:
            await export.copy_lines(send)
        except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # Too late for an error answer: the missing last line tells the client.
            logger.error("export cut short by a database error: %s", exc)
            return response
        await response.write(_json_line({"end": True, "entries": entries}))
        metrics.export_entries.inc(entries)
    await response.write_eof()
    return response


@requires("lookup", "analyst")
async def get_bloom(request: web.Request) -> web.Response:
    """``GET /v1/bloom``: this node's Bloom filter of every known number, to keep on a device.

    A number the filter does not hold was never reported; ask the service
    only about the others. Format: ``reputation/bloom.py``.
    """
    number_filter = request.app[LOOKUPS].filter
    if number_filter is None:
        raise Unavailable("The Bloom filter is still loading; retry shortly.", code="bloom_loading")
    body = number_filter.download()
    etag = xxhash.xxh3_128_hexdigest(body)
    if _not_modified(request, etag):
        response = web.Response(status=304)
    else:
        response = web.Response(body=body, content_type="application/octet-stream")
    response.etag = etag
    response.headers["Cache-Control"] = "no-cache"
    return response
