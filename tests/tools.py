"""Tests that drive real outside tools (Kamailio, sipp, Prometheus, Chromium).

On a developer machine without a tool, such a test is skipped with the
``apt-get install`` line that brings it. CI installs every tool and exports
``REPUTATION_REQUIRE_TOOLS=1``: there a missing tool FAILS the test, so that a
broken install can never pass as a skip.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REQUIRE_ENV = "REPUTATION_REQUIRE_TOOLS"
# Debian puts servers in sbin, which a normal user's PATH may lack.
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def find(command: str) -> str | None:
    return shutil.which(command, path=SEARCH_PATH)


def require(packages: str, *commands: str, files: tuple[str, ...] = ()) -> dict[str, str]:
    """Paths of ``commands``; skip (or fail under CI) naming the Debian ``packages``."""
    found = {command: find(command) for command in commands}
    missing = [command for command, path in found.items() if path is None]
    missing += [pattern for pattern in files if not any(Path("/").glob(pattern.lstrip("/")))]
    if missing:
        message = f"needs {', '.join(missing)}: apt-get install {packages}"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{message} ({REQUIRE_ENV}=1: every tool must be installed)")
        pytest.skip(message)
    return {command: path for command, path in found.items() if path is not None}
