"""Logging set-up and the access log.

Logs carry request ids and route patterns, never phone numbers: the access
log writes ``/v1/numbers/{number}``, not the path that was asked for. Two
filters back this up: the HTTP server's reports of malformed requests lose the
raw request text they would quote, and every other line has anything shaped
like a phone number replaced by ``<number>`` before it is written.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError

from reputation.settings import Settings

REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID = web.RequestKey("request_id", str)
# A client's own request id is kept only if it is short, plain, and holds no
# run of digits that could be a phone number.
_CLIENT_REQUEST_ID = re.compile(r"(?!.*[0-9]{7})[A-Za-z0-9._-]{1,64}")
# What a phone number looks like in text: E.164 (also URL-encoded), or a run of
# 9 to 15 digits standing alone (national and international forms).
_NUMBER_LIKE = re.compile(
    r"(?:\+|%2[Bb])[0-9]{7,15}(?![0-9])|(?<![A-Za-z0-9])[0-9]{9,15}(?![A-Za-z0-9])"
)
ACCESS_LOGGER = "aiohttp.access"
# A request slower than this is written to the access log even when only errors are.
SLOW_REQUEST_SECONDS = 0.1


def redact_numbers(text: str) -> str:
    return _NUMBER_LIKE.sub("<number>", text)


class RedactNumbers(logging.Filter):
    """Replaces anything shaped like a phone number in a log line, traceback included."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == ACCESS_LOGGER:  # written by AccessLogger: safe by construction
            return True
        message = record.getMessage()
        redacted = redact_numbers(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_numbers(record.exc_text)
        return True


class WithoutRequestText(logging.Filter):
    """Keeps the HTTP server's malformed-request reports, minus the request text they quote."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            record.msg = f"{record.getMessage()}: {type(error).__name__} (HTTP {error.code})"
            record.args, record.exc_info, record.exc_text = None, None, None
        return True


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactNumbers())
    install_request_text_filter()


def install_request_text_filter() -> None:
    """Strip quoted request text from the HTTP server's error reports (idempotent)."""
    server_logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, WithoutRequestText) for f in server_logger.filters):
        server_logger.addFilter(WithoutRequestText())


class _RequestIds:
    """Request ids unique across processes: a random per-process prefix and a counter.

    As unique as a random UUID for our purposes and ten times cheaper; a forked
    worker draws a prefix of its own.
    """

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.prefix = secrets.token_hex(8)
        self.counter = itertools.count()

    def next(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"


_request_ids = _RequestIds()


def new_request_id() -> str:
    """32 hex digits, never the same twice in any process of this node."""
    return _request_ids.next()


def assign_request_id(request: web.Request) -> str:
    """The id of this request (the client's own if safe to keep), for the response and logs."""
    given = request.headers.get(REQUEST_ID_HEADER)
    if given is not None and _CLIENT_REQUEST_ID.fullmatch(given):
        request_id = given
    else:
        request_id = new_request_id()
    request[REQUEST_ID] = request_id
    return request_id


class AccessLogger(AbstractAccessLogger):
    """One line per request: id, method, route pattern, status, time."""

    @property
    def enabled(self) -> bool:
        # Checked by aiohttp once per connection: no work at all below INFO.
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        route = "unmatched"
        match_info = getattr(request, "match_info", None)
        if match_info is not None and match_info.route.resource is not None:
            route = match_info.route.resource.canonical
        request_id = request.get(REQUEST_ID, "-")
        self.logger.info(
            "%s %s %s %d %.3fms", request_id, request.method, route, response.status, time * 1000
        )


class ErrorAccessLogger(AccessLogger):
    """The access log of a busy node: refused or failed requests, and slow ones.

    A line per lookup costs more than the lookup itself (formatting and a write
    for each), and a switch asks thousands of times a second.
    """

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if response.status >= 400 or time >= SLOW_REQUEST_SECONDS:
            super().log(request, response, time)


# Values of the ``access_log`` setting.
ACCESS_LOGGERS: dict[str, type[AccessLogger] | None] = {
    "all": AccessLogger,
    "errors": ErrorAccessLogger,
    "off": None,
}


def access_log_options(settings: Settings) -> dict[str, Any]:
    """``run_app`` arguments for the access log the settings ask for."""
    access_logger = ACCESS_LOGGERS[settings.access_log]
    if access_logger is None:
        return {"access_log": None}
    return {"access_log_class": access_logger}
