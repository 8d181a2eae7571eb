"""Start-up of a node: seconds until ``/readyz`` answers 200, and memory per worker.

Two cases, each with every worker count asked for:

- **first start**: no stored filter snapshot, so the Bloom filter is built
  from the ``numbers`` table (and stored for the next node);
- **restart**: the snapshot the first start stored is there, so the node
  loads its bits and replays only the change log after it.

The suite (``python -m benchmarks``) runs this on its own database and port;
alone, it seeds a database it can keep between runs, since seeding 10M rows
takes minutes:

    .venv/bin/python -m benchmarks.startup --size 10m \\
        --database-url postgresql://postgres@127.0.0.1:5432/postgres \\
        --database startup_10m --keep --port 19500

``--listed`` seeds every number as listed (``benchmarks.listed``), so that
the range index, which readiness waits for too, holds them all. ``--code
DIR`` runs the nodes from another checkout (a before/after comparison).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from benchmarks import seed
from benchmarks.listed import seed_listed
from benchmarks.processes import ProcessGroup, cpu_seconds, python_module

SIZES = {"100k": 100_000, "1m": 1_000_000, "10m": 10_000_000}
READY_TIMEOUT = 600.0
# Targets: a node with 1M numbers ready in under 15 s, with 10M in under 30 s
# and under 1 GB of memory.
READY_TARGETS = {1_000_000: 15.0, 10_000_000: 30.0}
MAX_RSS_MIB_10M = 1024


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def start_once(
    port: int,
    workers: int,
    env: Mapping[str, str],
    log_dir: Path,
    name: str,
    code: Path | None = None,
) -> dict[str, Any]:
    """Start ``workers`` processes on ``port``, time them until ready, read their memory, stop.

    ``code``: a checkout to run instead of the installed package.
    """
    group = ProcessGroup(
        name,
        [python_module("benchmarks.service", "--port", str(port))] * workers,
        env=env,
        log_dir=log_dir,
        cwd=code,
    )
    try:
        ready = group.wait_until_answers(f"http://127.0.0.1:{port}/readyz", READY_TIMEOUT, {})
        return {
            "ready_seconds": round(ready, 2),
            "rss_mib": group.rss_mib(),
            "cpu_seconds": [round(cpu_seconds(pid), 2) for pid in group.pids],
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }
    finally:
        group.stop()


async def forget_snapshots(database_url: str) -> None:
    """Delete every stored filter, so that the next node builds its own from the table."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("DELETE FROM filter_snapshots")
    finally:
        await conn.close()


def measure(
    database_url: str,
    port: int,
    worker_counts: Sequence[int],
    env: Mapping[str, str],
    log_dir: Path,
    code: Path | None = None,
) -> dict[str, dict[str, Any]]:
    """First start and restart for each worker count: ``{"1": {"first": ..., "restart": ...}}``."""
    results: dict[str, dict[str, Any]] = {}
    for workers in worker_counts:
        asyncio.run(forget_snapshots(database_url))
        first = start_once(port, workers, env, log_dir, f"first-start-{workers}", code)
        log(f"   {workers} worker(s), first start: {first['ready_seconds']} s, {first['rss_mib']}")
        restart = start_once(port, workers, env, log_dir, f"restart-{workers}", code)
        log(f"   {workers} worker(s), restart: {restart['ready_seconds']} s, {restart['rss_mib']}")
        results[str(workers)] = {"first": first, "restart": restart}
    return results


def verdicts(
    size: int, startup: Mapping[str, Mapping[str, Any]]
) -> list[tuple[str, str, bool | None]]:
    """Each start-up figure against its target: (target and case, measured, met or None)."""
    ready_target = READY_TARGETS.get(size)
    if ready_target is None:
        target = f"{size:,} numbers: ready"
    else:
        target = f"{'10M' if size >= 10_000_000 else '1M'}: ready < {ready_target:.0f} s"
    if size >= 10_000_000:
        target += ", RSS < 1 GB"
    out: list[tuple[str, str, bool | None]] = []
    for workers, runs in startup.items():
        for case, label in (("first", "first start"), ("restart", "restart")):
            run = runs[case]
            rss = run["rss_mib"]
            measured = (
                f"{run['ready_seconds']:.1f} s; RSS {' + '.join(f'{r:.0f}' for r in rss)} MiB"
            )
            met = None if ready_target is None else run["ready_seconds"] < ready_target
            if met is not None and size >= 10_000_000:
                met = met and sum(rss) < MAX_RSS_MIB_10M
            out.append((f"{target}, {workers} worker(s), {label}", measured, met))
    return out


def service_env(database_url: str, data_dir: Path) -> dict[str, str]:
    return {
        "REPUTATION_DATABASE_URL": database_url,
        "REPUTATION_DATA_DIR": str(data_dir),
        "REPUTATION_HOST": "127.0.0.1",
        # Readiness does not depend on keys; no key needs creating.
        "REPUTATION_AUTH": "off",
    }


async def prepare(admin_url: str, name: str, size: int, listed: bool, reseed: bool) -> str:
    """The database ``name`` on ``admin_url``'s server, holding ``size`` seeded numbers."""
    url = urlunsplit(urlsplit(admin_url)._replace(path="/" + name))
    conn = await asyncpg.connect(admin_url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    if exists and not reseed:
        conn = await asyncpg.connect(url)
        try:
            count = await conn.fetchval(
                "SELECT CASE WHEN to_regclass('numbers') IS NULL THEN -1 "
                "ELSE (SELECT count(*) FROM numbers) END"
            )
        finally:
            await conn.close()
        if count == size:
            log(f"database {name} already holds {size:,} numbers")
            return url
        if count not in (-1, 0):
            raise SystemExit(f"database {name} holds {count:,} numbers, not {size:,}: --reseed")
    log(f"seeding {size:,} numbers into {name} ({'listed' if listed else 'as the suite does'})")
    seconds = await (seed_listed(url, size) if listed else seed.seed_postgres(url, size))
    log(f"seeded in {seconds:.0f} s")
    return url


async def drop(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.startup", description=__doc__)
    parser.add_argument("--size", choices=SIZES, default="1m", help="reported numbers seeded")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL"),
        required="BENCH_DATABASE_URL" not in os.environ,
        help="PostgreSQL admin URL of the server to seed on [env BENCH_DATABASE_URL]",
    )
    parser.add_argument("--database", help="database name (default: reputation_startup_SIZE)")
    parser.add_argument("--keep", action="store_true", help="keep the database for another run")
    parser.add_argument("--reseed", action="store_true", help="seed again even if it holds SIZE")
    parser.add_argument("--listed", action="store_true", help="seed every number as listed")
    parser.add_argument("--port", type=int, default=18640, help="port the workers share")
    parser.add_argument("--workers", default="1,2", help="worker counts, e.g. 1,2")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--code", type=Path, help="run the nodes from this checkout instead")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    size = SIZES[args.size]
    name = args.database or f"reputation_startup_{args.size}{'_listed' if args.listed else ''}"
    started = time.perf_counter()
    url = asyncio.run(prepare(args.database_url, name, size, args.listed, args.reseed))
    try:
        with tempfile.TemporaryDirectory(prefix="reputation-startup-") as scratch:
            workers = [int(w) for w in args.workers.split(",")]
            env = service_env(url, Path(scratch) / "data")
            startup = measure(url, args.port, workers, env, Path(scratch), args.code)
    finally:
        if not args.keep:
            asyncio.run(drop(args.database_url, name))
    result = {
        "size": size,
        "listed": args.listed,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "elapsed_seconds": round(time.perf_counter() - started, 1),
        "startup": startup,
    }
    print(f"{size:,} numbers{' (all listed)' if args.listed else ''}:")
    print("| target, case | ready, memory per worker | |")
    print("| --- | --- | --- |")
    for what, measured, met in verdicts(size, startup):
        verdict = "not judged" if met is None else ("met" if met else "NOT met")
        print(f"| {what} | {measured} | {verdict} |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
