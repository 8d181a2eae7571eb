"""Fill PostgreSQL (with ``COPY``) and Redis with the same reported numbers."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import redis.asyncio as aioredis

from benchmarks.numbers import reported
from reputation.migrate import migrate

CHUNK = 50_000
# Spread of distinct reporters per number: about a third of the numbers each
# end up allow (1-2), warn (3-9) and block (10+), so every verdict is encoded.
REPORTER_SPREAD = 15
REDIS_KEY = "reported"


def _row(i: int, first: str, last: str) -> str:
    reporters = 1 + i % REPORTER_SPREAD
    reports = reporters + i % 3
    return (
        f'{reported(i)}\treported\t{reports}\t{reporters}\t{{"scam": {reports}}}'
        f'\t{first}\t{last}\t{{"scam": {reporters}}}\t{last}\n'
    )


async def _copy_source(count: int) -> AsyncIterator[bytes]:
    # Recent reports, so that the evidence has not decayed: every verdict occurs.
    now = datetime.now(UTC)
    first = (now - timedelta(days=20)).isoformat()
    last = (now - timedelta(hours=1)).isoformat()
    for start in range(0, count, CHUNK):
        rows = (_row(i, first, last) for i in range(start, min(count, start + CHUNK)))
        yield "".join(rows).encode()


async def seed_postgres(url: str, count: int) -> float:
    """Migrate the database at ``url`` and ``COPY`` ``count`` reported numbers in; seconds."""
    started = time.perf_counter()
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        await conn.execute("TRUNCATE numbers, changes CASCADE")
        await conn.copy_to_table(
            "numbers",
            source=_copy_source(count),
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
            ],
            format="text",
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
