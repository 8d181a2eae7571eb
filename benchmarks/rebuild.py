"""Lookup latency while a node rebuilds its Bloom filter in the background.

One worker on an already seeded database (e.g. kept by ``benchmarks.startup
--keep``) rebuilds its filter on a schedule (``REPUTATION_FILTER_REBUILD_INTERVAL``)
while one client asks for never-reported numbers back to back on one
keep-alive connection. Latencies while the rebuild runs are compared with
those before it; the rebuild's start and length come from the node's log.

    .venv/bin/python -m benchmarks.rebuild \\
        --database-url postgresql://postgres@127.0.0.1:5432/reputation_startup_1m --port 18650

``--code DIR`` runs the node from another checkout (a before/after comparison).
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from benchmarks.numbers import unreported
from benchmarks.processes import ProcessGroup, python_module

_REBUILT = re.compile(
    r"^(\S+ \S+) INFO reputation\.filters: Bloom filter rebuilt \(scheduled\): "
    r"(\d+) numbers.* in ([0-9.]+) s$",
    re.MULTILINE,
)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def percentiles(latencies: list[float]) -> dict[str, Any]:
    """Count, p50/p99/p99.9/max in µs, and how many took over 10 ms."""
    ordered = sorted(latencies)
    if not ordered:
        return {"requests": 0}

    def at(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1e6)

    return {
        "requests": len(ordered),
        "p50_us": at(0.5),
        "p99_us": at(0.99),
        "p99_9_us": at(0.999),
        "max_us": round(ordered[-1] * 1e6),
        "over_10ms": sum(1 for x in ordered if x > 0.01),
    }


def rebuilt(log_file: Path) -> tuple[float, int, float] | None:
    """(wall-clock end, numbers, seconds) of the first scheduled rebuild in the log."""
    found = _REBUILT.search(log_file.read_text(errors="replace"))
    if found is None:
        return None
    end = datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return end, int(found.group(2)), float(found.group(3))


def run(database_url: str, port: int, rebuild_after: float, code: Path | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="reputation-rebuild-") as scratch:
        env = {
            "REPUTATION_DATABASE_URL": database_url,
            "REPUTATION_DATA_DIR": str(Path(scratch) / "data"),
            "REPUTATION_HOST": "127.0.0.1",
            "REPUTATION_AUTH": "off",
            "REPUTATION_LOG_LEVEL": "INFO",
            "REPUTATION_RATE_LIMITS": "lookup=off,analyst=off,admin=off",
            "REPUTATION_FILTER_REBUILD_INTERVAL": str(rebuild_after),
        }
        group = ProcessGroup(
            "node",
            [python_module("benchmarks.service", "--port", str(port))],
            env=env,
            log_dir=Path(scratch),
            cwd=code,
        )
        try:
            ready = group.wait_until_answers(f"http://127.0.0.1:{port}/readyz", 600, {})
            log(f"node ready in {ready:.1f} s; asking until its scheduled rebuild is over")
            samples = ask_until_rebuilt(port, Path(scratch) / "node-0.log", rebuild_after + 600)
            found = rebuilt(Path(scratch) / "node-0.log")
        finally:
            group.stop()
    if found is None:
        raise RuntimeError("no scheduled rebuild within the time allowed")
    end, count, seconds = found
    start = end - seconds
    before = [latency for at, latency in samples if at < start]
    during = [latency for at, latency in samples if start <= at <= end]
    return {
        "numbers": count,
        "rebuild_seconds": seconds,
        "before": percentiles(before),
        "during": percentiles(during),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def ask_until_rebuilt(port: int, log_file: Path, timeout: float) -> list[tuple[float, float]]:
    """(wall-clock start, seconds) of each lookup, until the rebuild is logged (plus 1 s)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    paths = ["/v1/numbers/" + quote(unreported(i), safe="") for i in range(10_000)]
    samples: list[tuple[float, float]] = []
    deadline = time.monotonic() + timeout
    stop_at: float | None = None
    checked = time.monotonic()
    i = 0
    while time.monotonic() < (stop_at or deadline):
        wall = time.time()
        started = time.perf_counter()
        connection.request("GET", paths[i % len(paths)])
        response = connection.getresponse()
        response.read()
        samples.append((wall, time.perf_counter() - started))
        if response.status != 200:
            raise RuntimeError(f"lookup answered {response.status}")
        i += 1
        if stop_at is None and time.monotonic() - checked > 0.5:
            checked = time.monotonic()
            if rebuilt(log_file) is not None:
                stop_at = time.monotonic() + 1.0
    connection.close()
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rebuild", description=__doc__)
    parser.add_argument("--database-url", required=True, help="a seeded database")
    parser.add_argument("--port", type=int, default=18650)
    parser.add_argument(
        "--rebuild-after", type=float, default=40.0, help="REPUTATION_FILTER_REBUILD_INTERVAL"
    )
    parser.add_argument("--code", type=Path, help="run the node from this checkout instead")
    args = parser.parse_args(argv)
    result = run(args.database_url, args.port, args.rebuild_after, args.code)
    print(
        f"rebuild of {result['numbers']:,} numbers took {result['rebuild_seconds']} s; "
        f"load average {result['load_average']}"
    )
    print("| lookups, one connection | requests | p50 µs | p99 µs | p99.9 µs | max µs | > 10 ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in ("before", "during"):
        row = result[name]
        print(
            f"| {name} the rebuild | {row['requests']:,} | {row.get('p50_us', '-')} | "
            f"{row.get('p99_us', '-')} | {row.get('p99_9_us', '-')} | {row.get('max_us', '-')} | "
            f"{row.get('over_10ms', '-')} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
