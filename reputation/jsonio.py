"""JSON in and out of HTTP handlers: one body reader and one answer writer for every module."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from reputation.errors import BadRequest


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def json_response(body: Any, status: int = 200) -> web.Response:
    """A JSON answer in plain UTF-8 (Vietnamese text stays readable)."""
    try:
        return web.json_response(body, status=status, dumps=_dumps)
    except UnicodeEncodeError:  # a lone surrogate echoed from the input: escape it
        return web.json_response(body, status=status)


def encoded_json_response(body: bytes, status: int = 200) -> web.Response:
    """A JSON answer whose bytes are ready (the same headers as ``json_response``)."""
    return web.Response(body=body, status=status, content_type="application/json", charset="utf-8")


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a coded 400."""
    raw = await request.read()
    try:
        # Strict UTF-8 first: json.loads would let encoded surrogates through.
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # bad UTF-8 or JSON, an integer of 5000 digits
        raise BadRequest("The body is not valid JSON.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.", code="invalid_json")
    return body
