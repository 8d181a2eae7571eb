"""Load generators: wrk (closed loop, keep-alive) and openloop.c (fixed rate, open loop)."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LUA_SCRIPT = Path(__file__).with_name("requests.lua")


@dataclass(frozen=True)
class Header:
    """One extra request header (the API key)."""

    name: str
    value: str


def wrk(
    base_url: str,
    lines: Path,
    *,
    connections: int,
    duration: float,
    threads: int = 1,
    method: str = "GET",
    path: str = "",
    header: Header | None = None,
) -> dict[str, Any]:
    """Run wrk over the prepared requests; its summary with requests/s added."""
    env = {
        **os.environ,
        "BENCH_LINES": str(lines),
        "BENCH_METHOD": method,
        "BENCH_PATH": path,
        "BENCH_HEADER_NAME": header.name if header else "",
        "BENCH_HEADER_VALUE": header.value if header else "",
    }
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "5s",
        "-s",
        str(LUA_SCRIPT),
        base_url,
    ]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    for line in completed.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            result: dict[str, Any] = json.loads(line[len("WRK_JSON ") :])
            seconds = result["duration_us"] / 1e6
            result["rps"] = result["requests"] / seconds if seconds else 0.0
            result["errors_total"] = sum(result["errors"].values())
            return result
    raise RuntimeError(f"wrk printed no summary:\n{completed.stdout}\n{completed.stderr}")


def open_loop(
    binary: Path,
    port: int,
    paths: Path,
    *,
    rate: float,
    duration: float,
    connections: int = 16,
    warm_up: float = 1.0,
    header: Header | None = None,
) -> dict[str, Any]:
    """Latency under load: requests on a fixed schedule, timed from when each was due.

    ``openloop.c`` sends request k at start + k / rate on connection k mod
    ``connections`` whether or not earlier answers came back, so queueing in the
    server shows in the figures (wrk waits for each answer before asking again).
    """
    command = [
        str(binary),
        "127.0.0.1",
        str(port),
        f"{rate:.1f}",
        f"{duration:.1f}",
        f"{warm_up:.1f}",
        str(connections),
        str(paths),
    ]
    if header is not None:
        command.append(f"{header.name}: {header.value}")
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"openloop failed: {completed.stderr.strip()}")
    result: dict[str, Any] = json.loads(completed.stdout)
    return result
