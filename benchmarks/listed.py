"""A database holding a published list of a given size, and a service node on it.

Shared by ``benchmarks.ranges`` and ``benchmarks.export``. Every seeded
number is reported by 3 to 15 distinct people (``benchmarks.numbers.reported``),
so all of them are listed: a third ``block``, two thirds ``warn``. Their
stored verdicts are computed with the service's own policy functions, so the
node's start-up sweep finds nothing to re-judge; the published list
(``list_entries``) is filled in one statement with the database's own
functions, as its migration does (seeding a million rows through the per-row
trigger would take minutes).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from benchmarks.numbers import reported
from benchmarks.processes import ProcessGroup, python_module
from reputation.embedded import EmbeddedPostgres
from reputation.migrate import migrate
from reputation.queries import queries
from reputation.records import NumberRecord
from reputation.settings import Settings
from reputation.store import POLICY_STATE
from reputation.verdict import Policy, judge, next_change

CHUNK = 50_000
# The published entries of every listed number, as the migration that made
# list_entries computes them for the numbers already there.
PUBLISH_ALL = """
INSERT INTO list_entries (e164, listed, verdict, category, reports, reporters, changed_txid)
SELECT e164, true, verdict, published_category(categories), published_count(reports),
       published_count(reporters), pg_current_xact_id()::text::bigint
FROM numbers
WHERE verdict IN ('warn', 'block')
"""
# Distinct reporters per seeded number: 3 .. 15.
MIN_REPORTERS, REPORTER_SPREAD = 3, 13


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _shapes(now: datetime, policy: Policy) -> dict[int, str]:
    """One COPY row tail per reporter count (few distinct shapes: judged once each)."""
    first, last = now - timedelta(days=20), now - timedelta(hours=1)
    tails = {}
    for reporters in range(MIN_REPORTERS, MIN_REPORTERS + REPORTER_SPREAD):
        reports = reporters + reporters % 3
        categories, weights = {"scam": reports}, {"scam": float(reporters)}
        record = NumberRecord(
            "+84900000000", "reported", reports, reporters, categories, first, last,
            weights, last, 0.0,
        )  # fmt: skip
        verdict = judge(record, now, policy).verdict
        changes_at = next_change(record, now, policy)
        tails[reporters] = "\t".join(
            [
                "reported",
                str(reports),
                str(reporters),
                json.dumps(categories),
                first.isoformat(),
                last.isoformat(),
                json.dumps(weights),
                last.isoformat(),
                verdict,
                changes_at.isoformat() if changes_at else "\\N",
            ]
        )
    return tails


async def _rows(count: int, tails: dict[int, str]) -> AsyncIterator[bytes]:
    for start in range(0, count, CHUNK):
        yield "".join(
            f"{reported(i)}\t{tails[MIN_REPORTERS + i % REPORTER_SPREAD]}\n"
            for i in range(start, min(count, start + CHUNK))
        ).encode()


async def seed_listed(url: str, count: int) -> float:
    """Migrate the database at ``url`` and give it ``count`` listed numbers; seconds taken."""
    started = time.perf_counter()
    policy = Policy.from_settings(Settings())
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        # Rows arrive without the per-row trigger (replica role), then the
        # published list is filled in one statement, as the migration does.
        await conn.execute("SET session_replication_role = replica")
        await conn.copy_to_table(
            "numbers",
            source=_rows(count, _shapes(datetime.now(UTC), policy)),
            columns=[
                "e164", "status", "reports", "reporters", "categories", "first_reported_at",
                "last_reported_at", "weights", "weights_at", "verdict", "verdict_changes_at",
            ],
            format="text",
        )  # fmt: skip
        await conn.execute("SET session_replication_role = DEFAULT")
        await conn.execute(PUBLISH_ALL)
        await conn.execute(queries()["set_state"], POLICY_STATE, policy.fingerprint())
        await conn.execute("ANALYZE numbers; ANALYZE list_entries")
        listed = await conn.fetchval("SELECT count(*) FROM list_entries WHERE listed")
    finally:
        await conn.close()
    if listed != count:
        raise RuntimeError(f"{listed} numbers listed out of {count} seeded")
    return time.perf_counter() - started


@contextlib.contextmanager
def scratch_database(admin: str | None = None) -> Iterator[str]:
    """A fresh database on the server of ``admin`` (an admin URL; default:
    REPUTATION_BENCH_DATABASE_URL), or on an embedded PostgreSQL."""
    admin = admin or os.environ.get("REPUTATION_BENCH_DATABASE_URL")
    if admin:
        name = f"reputation_bench_{uuid.uuid4().hex[:8]}"
        asyncio.run(_admin(admin, f'CREATE DATABASE "{name}"'))
        try:
            yield urlunsplit(urlsplit(admin)._replace(path="/" + name))
        finally:
            asyncio.run(_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        return
    data_dir = Path(tempfile.mkdtemp(prefix="reputation-bench-pg-"))
    data_dir.chmod(0o711)  # the server runs as another user when we are root
    server = EmbeddedPostgres(data_dir, durable=True)
    try:
        log("starting an embedded PostgreSQL")
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def service_node(database_url: str, port: int, scratch: Path) -> Iterator[ProcessGroup]:
    """One worker of the service on ``database_url``, ready (range index loaded), then stopped.

    Authentication is off (allowed on the loopback address): the figures are
    about the published list, not about key checks.
    """
    env = {
        "REPUTATION_DATABASE_URL": database_url,
        "REPUTATION_HOST": "127.0.0.1",
        "REPUTATION_AUTH": "off",
        "REPUTATION_LOG_LEVEL": "WARNING",
        "REPUTATION_RATE_LIMITS": "lookup=off,analyst=off,admin=off",
        "REPUTATION_PUBLIC_RATE_LIMIT": "off",
    }
    group = ProcessGroup(
        "service",
        [python_module("benchmarks.service", "--port", str(port))],
        env=env,
        log_dir=scratch,
    )
    try:
        ready = group.wait_until_answers(f"http://127.0.0.1:{port}/readyz", 180, {})
        log(f"service ready in {ready:.1f} s (filter and range index loaded)")
        yield group
    finally:
        group.stop()


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="reputation-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
