"""Fill PostgreSQL (with ``COPY``) and Redis with the same reported numbers."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import redis.asyncio as aioredis

from benchmarks.numbers import reported
from reputation.migrate import migrate
from reputation.records import NumberRecord
from reputation.settings import Settings
from reputation.store import POLICY_STATE
from reputation.verdict import Policy, judge, next_change

CHUNK = 50_000
# Spread of distinct reporters per number: about a third of the numbers each
# end up allow (1-2), warn (3-9) and block (10+), so every verdict is encoded.
REPORTER_SPREAD = 15
REDIS_KEY = "reported"


def _row(i: int, first: str, last: str, verdicts: dict[int, str]) -> str:
    reporters = 1 + i % REPORTER_SPREAD
    reports = reporters + i % 3
    return (
        f'{reported(i)}\treported\t{reports}\t{reporters}\t{{"scam": {reports}}}'
        f'\t{first}\t{last}\t{{"scam": {reporters}}}\t{last}\t{verdicts[reporters]}\n'
    )


def _stored_verdicts(policy: Policy, last: datetime, now: datetime) -> dict[int, str]:
    """Per count of reporters, the columns ``verdict`` and ``verdict_changes_at`` as COPY text.

    Stored as the service stores them: a node that finds verdicts kept under
    other settings re-judges every row in the background, which would then
    run during the measurements.
    """
    verdicts = {}
    for reporters in range(1, REPORTER_SPREAD + 1):
        scam = {"scam": reporters}
        record = NumberRecord(
            "+84", "reported", reporters, reporters, scam, last, last, scam, last, -math.inf
        )
        changes_at = next_change(record, now, policy)
        verdicts[reporters] = (
            judge(record, now, policy).verdict
            + "\t"
            + (changes_at.isoformat() if changes_at is not None else "\\N")
        )
    return verdicts


async def _copy_source(count: int, policy: Policy) -> AsyncIterator[bytes]:
    # Recent reports, so that the evidence has not decayed: every verdict occurs.
    now = datetime.now(UTC)
    first = now - timedelta(days=20)
    last = now - timedelta(hours=1)
    verdicts = _stored_verdicts(policy, last, now)
    first_text, last_text = first.isoformat(), last.isoformat()
    for start in range(0, count, CHUNK):
        stop = min(count, start + CHUNK)
        rows = (_row(i, first_text, last_text, verdicts) for i in range(start, stop))
        yield "".join(rows).encode()


async def seed_postgres(url: str, count: int) -> float:
    """Migrate the database at ``url`` and ``COPY`` ``count`` reported numbers in; seconds."""
    started = time.perf_counter()
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        await conn.execute("TRUNCATE numbers, changes CASCADE")
        policy = Policy.from_settings(Settings())
        await conn.copy_to_table(
            "numbers",
            source=_copy_source(count, policy),
            columns=[
                "e164",
                "status",
                "reports",
                "reporters",
                "categories",
                "first_reported_at",
                "last_reported_at",
                "weights",
                "weights_at",
                "verdict",
                "verdict_changes_at",
            ],
            format="text",
        )
        # The stored verdicts follow the default settings, which the suite's nodes use.
        await conn.execute(
            "INSERT INTO server_state (name, value) VALUES ($1, $2)"
            " ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
            POLICY_STATE,
            policy.fingerprint(),
        )
        await conn.execute("ANALYZE numbers")
    finally:
        await conn.close()
    return time.perf_counter() - started


async def seed_redis(port: int, count: int) -> float:
    """Put the same ``count`` reported numbers in the Redis SET the DIY peer reads; seconds."""
    started = time.perf_counter()
    client = aioredis.Redis(host="127.0.0.1", port=port)
    try:
        await client.delete(REDIS_KEY)
        for start in range(0, count, CHUNK):
            await client.sadd(
                REDIS_KEY, *(reported(i) for i in range(start, min(count, start + CHUNK)))
            )
    finally:
        await client.aclose()
    return time.perf_counter() - started
