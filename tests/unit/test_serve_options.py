"""How ``reputation serve`` runs: event loop and access log, from the settings."""

from __future__ import annotations

import asyncio
import os

import pytest
import uvloop

from reputation.cli import access_log_options, new_event_loop
from reputation.logs import AccessLogger, ErrorAccessLogger
from reputation.settings import Settings


def test_serve_runs_on_uvloop_by_default_and_on_asyncio_when_asked() -> None:
    loop = new_event_loop(Settings().event_loop)
    try:
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()
    loop = new_event_loop("asyncio")
    try:
        assert not isinstance(loop, uvloop.Loop)
        assert isinstance(loop, asyncio.AbstractEventLoop)
    finally:
        loop.close()


def test_event_loop_setting_is_checked_at_start_up() -> None:
    assert Settings(event_loop="asyncio").event_loop == "asyncio"
    with pytest.raises(ValueError, match="REPUTATION_EVENT_LOOP"):
        Settings(event_loop="trio")


def test_access_log_options_follow_the_setting() -> None:
    assert access_log_options(Settings()) == {"access_log_class": ErrorAccessLogger}
    assert access_log_options(Settings(access_log="all")) == {"access_log_class": AccessLogger}
    assert access_log_options(Settings(access_log="off")) == {"access_log": None}


def test_serve_runs_one_worker_per_cpu_core_by_default() -> None:
    assert Settings().workers == (os.cpu_count() or 1)
    assert Settings(workers=3).workers == 3
