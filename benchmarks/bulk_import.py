"""Lines per second of ``reputation import`` on a large generated list.

Generates a CSV list (default 1,000,000 lines: 99% valid, 1% refused, counts of
1 to 3 people), then measures in the same run:

- baseline: reading and checking every line, writing nothing (the floor);
- import: the whole import into PostgreSQL, with the progress line;
- again: the same file imported a second time (every report already present).

and checks the counts in the database. Peak memory of the process is printed
too (the list is streamed, so it does not grow with the file).

    python -m benchmarks.bulk_import [--lines 1000000]

Uses REPUTATION_DATABASE_URL (a server where it may create a database), or an
embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from benchmarks.reports import postgres_cpu_seconds
from reputation import bulk
from reputation.constants import CATEGORIES
from reputation.embedded import EmbeddedPostgres
from reputation.migrate import migrate
from reputation.settings import Settings
from reputation.store import Store, create_pool
from reputation.workers import new_event_loop

REFUSED_SHARE = 0.01


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(path: Path, lines: int, seed: int = 8) -> tuple[int, int]:
    """Write the list; (valid lines, reports they stand for)."""
    rng = random.Random(seed)
    valid = reports = 0
    sources = ("police-hcmc", "police-hn", "carrier-a", "carrier-b", "bank-x")
    with path.open("w") as out:
        out.write("number,category,count,source\n")
        for i in range(lines):
            if rng.random() < REFUSED_SHARE:
                out.write(f"09{i:08d},unknown,1,{rng.choice(sources)}\n")
                continue
            count = rng.choice((1, 1, 1, 2, 3))
            # Distinct numbers: i spread over the 09x mobile blocks.
            number = f"+849{i % 10:d}{i // 10:07d}"
            out.write(f"{number},{rng.choice(CATEGORIES)},{count},{rng.choice(sources)}\n")
            valid += 1
            reports += count
    return valid, reports


@contextlib.contextmanager
def server(workdir: Path) -> Iterator[tuple[str, int | None]]:
    """An admin URL, and the postmaster's pid when the server is our own (its CPU is measured)."""
    given = os.environ.get("REPUTATION_DATABASE_URL")
    if given:
        yield given, None
        return
    workdir.chmod(0o711)
    embedded = EmbeddedPostgres(workdir / "pg", durable=False)
    try:
        url = embedded.start()
        yield url, int((embedded.cluster / "postmaster.pid").read_text().split()[0])
    finally:
        embedded.stop()


def cpu_note(lines: int, own: float, postgres: float | None) -> str:
    """CPU seconds per 1,000 lines: steadier than lines/s on a machine shared with other work."""
    note = f"CPU per 1,000 lines: importer {own / lines * 1e3:.3f} s"
    if postgres is not None:
        note += f", PostgreSQL {postgres / lines * 1e3:.3f} s"
    return note


@contextlib.asynccontextmanager
async def fresh_store(admin_url: str) -> AsyncIterator[Store]:
    name = f"reputation_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(admin_url)._replace(path="/" + name))
    settings = Settings(database_url=url, reporter_key="benchmark")
    try:
        async with create_pool(url, settings) as pool:
            async with pool.acquire() as conn:
                await migrate(conn)
            yield Store(pool, b"benchmark", lambda: datetime.now(UTC), settings)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def run(lines: int) -> None:
    with tempfile.TemporaryDirectory(prefix="reputation-import-") as tmp:
        workdir = Path(tmp)
        path = workdir / "list.csv"
        started = time.perf_counter()
        valid, reports = generate(path, lines)
        size = path.stat().st_size
        took = time.perf_counter() - started
        print(f"generated {lines:,} lines ({size / 1e6:.0f} MB) in {took:.1f} s")

        started = time.perf_counter()
        checked = 0
        with bulk.open_text(path) as (text, _):
            for line, _raw, fields in bulk.csv_rows(text):
                try:
                    assert not isinstance(fields, bulk.LineError)
                    bulk.parse_line(line, fields, "VN", None, None)
                    checked += 1
                except (bulk.LineError, AssertionError):
                    pass
        floor = time.perf_counter() - started
        assert checked == valid
        print(f"baseline (read + check, no writes): {lines / floor:,.0f} lines/s")

        with server(workdir) as (admin_url, postmaster):
            async with fresh_store(admin_url) as store:
                results = []
                for name in ("import", "again"):
                    own = time.process_time()
                    pg = postgres_cpu_seconds(postmaster) if postmaster else 0.0
                    summary = await bulk.import_file(
                        store,
                        path,
                        region="VN",
                        rejected_path=workdir / "rejected.csv",
                        stream=sys.stderr,
                    )
                    own = time.process_time() - own
                    pg_used = postgres_cpu_seconds(postmaster) - pg if postmaster else None
                    results.append(summary)
                    print(
                        f"{name:7s} {summary.lines:,} lines in {summary.seconds:,.1f} s: "
                        f"{summary.lines / summary.seconds:,.0f} lines/s, "
                        f"{summary.reports_added:,} reports added, "
                        f"{summary.reports_present:,} already present, "
                        f"{summary.rejected_lines:,} lines refused; "
                        + cpu_note(summary.lines, own, pg_used)
                    )
                first, again = results
                assert first.imported == valid
                assert first.reports_added == reports
                assert again.reports_added == 0
                assert again.reports_present == reports
                stored = await store.pool.fetchval("SELECT count(*) FROM reports")
                assert stored == reports, (stored, reports)
                print(
                    f"import rate / baseline: {first.lines / first.seconds / (lines / floor):.3f}; "
                    f"second run {first.seconds / again.seconds:.1f}x faster; "
                    f"peak memory {peak_rss_mb():.0f} MB"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    # On the event loop ``reputation import`` runs on.
    with asyncio.Runner(loop_factory=lambda: new_event_loop(Settings().event_loop)) as runner:
        runner.run(run(args.lines))


if __name__ == "__main__":
    main()
