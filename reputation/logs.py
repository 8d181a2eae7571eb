"""Logging set-up and the access log.

Logs carry request ids and route patterns, never phone numbers: the access
log writes ``/v1/numbers/{number}``, not the path that was asked for.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID = web.RequestKey("request_id", str)
# A client's own request id is kept only if it is short and plain.
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@web.middleware
async def request_id_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Give each request an id, echoed in the response and written in the access log."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = given if _CLIENT_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    request[REQUEST_ID] = request_id
    response: web.StreamResponse = await handler(request)
    response.headers[REQUEST_ID_HEADER] = request_id
    return response


class AccessLogger(AbstractAccessLogger):
    """One line per request: id, method, route pattern, status, time."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        route = "unmatched"
        match_info = getattr(request, "match_info", None)
        if match_info is not None and match_info.route.resource is not None:
            route = match_info.route.resource.canonical
        request_id = request.get(REQUEST_ID, "-")
        self.logger.info(
            "%s %s %s %d %.3fms", request_id, request.method, route, response.status, time * 1000
        )
