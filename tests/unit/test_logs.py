"""Request ids and the access log."""

from __future__ import annotations

import logging
import re
import subprocess
import sys

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from reputation.logs import (
    ACCESS_LOGGERS,
    SLOW_REQUEST_SECONDS,
    AccessLogger,
    ErrorAccessLogger,
    new_request_id,
)
from reputation.settings import Settings


def test_request_ids_are_32_hex_digits_and_never_repeat() -> None:
    ids = [new_request_id() for _ in range(10_000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_forked_worker_draws_ids_of_its_own() -> None:
    # In a fresh interpreter: forking the test process itself could copy its threads.
    script = (
        "import os\n"
        "from reputation.logs import new_request_id\n"
        "read, write = os.pipe()\n"
        "if os.fork() == 0:\n"
        "    os.write(write, new_request_id().encode()); os._exit(0)\n"
        "os.wait()\n"
        "print(os.read(read, 64).decode(), new_request_id())\n"
    )
    child, parent = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    assert child[:16] != parent[:16]


def _log_lines(
    logger_class: type[AccessLogger], status: int, seconds: float, caplog: pytest.LogCaptureFixture
) -> list[str]:
    logger = logging.getLogger("test.access")
    access_logger = logger_class(logger, "")
    request = make_mocked_request("GET", "/v1/numbers/%2B84912345678")
    with caplog.at_level(logging.INFO, logger="test.access"):
        caplog.clear()
        access_logger.log(request, web.Response(status=status), seconds)
    return [r.getMessage() for r in caplog.records]


def test_full_access_log_writes_every_request(caplog: pytest.LogCaptureFixture) -> None:
    assert len(_log_lines(AccessLogger, 200, 0.0001, caplog)) == 1


@pytest.mark.parametrize(
    ("status", "seconds", "written"),
    [
        (200, 0.0001, False),
        (201, 0.0001, False),
        (404, 0.0001, True),
        (503, 0.0001, True),
        (200, SLOW_REQUEST_SECONDS, True),
    ],
)
def test_error_access_log_writes_only_failures_and_slow_requests(
    caplog: pytest.LogCaptureFixture, status: int, seconds: float, written: bool
) -> None:
    lines = _log_lines(ErrorAccessLogger, status, seconds, caplog)
    assert bool(lines) is written
    for line in lines:
        assert "84912345678" not in line


def test_access_log_is_skipped_entirely_below_info() -> None:
    logger = logging.getLogger("test.access.quiet")
    logger.setLevel(logging.WARNING)
    assert not ErrorAccessLogger(logger, "").enabled
    logger.setLevel(logging.INFO)
    assert ErrorAccessLogger(logger, "").enabled


def test_access_log_setting_is_checked_at_start_up() -> None:
    assert Settings().access_log in ACCESS_LOGGERS
    assert set(ACCESS_LOGGERS) == {"all", "errors", "off"}
    with pytest.raises(ValueError, match="REPUTATION_ACCESS_LOG"):
        Settings(access_log="verbose")
