"""Group commit of reports: many at once share commits, and every acknowledged one is kept."""

from __future__ import annotations

import asyncio

import asyncpg
from aiohttp.test_utils import TestClient

NUMBERS = [f"+8491234{i:04d}" for i in range(120)]


async def _post(client: TestClient, body: dict[str, str], key: str | None = None) -> int:
    headers = {"Idempotency-Key": key} if key else None
    response = await client.post("/v1/reports", json=body, headers=headers)
    await response.read()
    return response.status


async def test_concurrent_reports_share_commits_and_are_all_kept(
    client: TestClient, database_url: str
) -> None:
    bodies = [
        {"number": number, "reporter": f"+8498765{i:04d}", "category": "scam"}
        for i, number in enumerate(NUMBERS)
    ]
    # Two reports on each of a few numbers too: the second must see the first.
    bodies += [{"number": NUMBERS[i], "reporter": f"+8497000{i:04d}"} for i in range(10)]
    statuses = await asyncio.gather(*(_post(client, body) for body in bodies))
    assert statuses == [201] * len(bodies)
    conn = await asyncpg.connect(database_url)
    try:
        stored = await conn.fetchval("SELECT count(*) FROM reports")
        # Rows written by one transaction share its xmin.
        transactions = await conn.fetchval("SELECT count(DISTINCT xmin::text) FROM reports")
        twice = await conn.fetchval(
            "SELECT count(*) FROM numbers WHERE reports = 2 AND e164 = ANY($1::text[])",
            NUMBERS[:10],
        )
        changes = await conn.fetchval("SELECT count(*) FROM changes WHERE kind = 'report'")
    finally:
        await conn.close()
    assert stored == len(bodies)
    assert changes == len(bodies)
    assert twice == 10
    assert transactions < len(bodies)


async def test_one_idempotency_key_sent_many_times_at_once_is_kept_once(
    client: TestClient, database_url: str
) -> None:
    body = {"number": "+84912345678", "reporter": "+84987000001", "category": "scam"}
    statuses = await asyncio.gather(*(_post(client, body, "same-key") for _ in range(20)))
    assert sorted(statuses) == [200] * 19 + [201]
    others = [
        {"number": number, "reporter": "+84987000002", "category": "scam"}
        for number in NUMBERS[:20]
    ]
    # Reports sharing the commit of a replayed key are kept all the same.
    statuses = await asyncio.gather(
        *(_post(client, body, "same-key") for _ in range(5)),
        *(_post(client, other) for other in others),
    )
    assert statuses == [200] * 5 + [201] * len(others)
    conn = await asyncpg.connect(database_url)
    try:
        kept = await conn.fetchval(
            "SELECT count(*) FROM reports WHERE idempotency_key = 'same-key'"
        )
        total = await conn.fetchval("SELECT count(*) FROM reports")
        reports = await conn.fetchval("SELECT reports FROM numbers WHERE e164 = '+84912345678'")
    finally:
        await conn.close()
    assert kept == 1
    assert total == 1 + len(others)
    assert reports == 1
