"""The review queue pages through 10,000 numbers with stable, gap-free keyset cursors."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from reputation.queries import queries
from reputation.settings import Settings
from tests.conftest import FakeClock

COUNT = 10_000


async def seed(settings: Settings, now: datetime) -> list[dict[str, Any]]:
    """10,000 numbers in one statement (unnest), with many ties on every sort key."""
    rows = []
    for i in range(COUNT):
        reported = i % 11 != 0  # some were only touched by an analyst: never reported
        rows.append(
            {
                "e164": f"+8491{(i * 7919) % 10_000_000:07d}",
                "status": "confirmed"
                if i % 50 == 0
                else ("cleared" if i % 97 == 0 else "reported"),
                "reporters": i % 37,
                "category": "spam_call" if i % 3 == 0 else "scam",
                "last": now - timedelta(minutes=i % 500) if reported else None,
                "heat_key": (2900.0 + (i % 250) / 8) if i % 7 else -math.inf,
                "verdict": "block" if i % 37 >= 30 else ("warn" if i % 37 >= 10 else "allow"),
            }
        )
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute(
            """
            INSERT INTO numbers (e164, status, reporters, reports, categories,
                                 last_reported_at, heat_key, verdict)
            SELECT e, s, r, r, jsonb_build_object(c, r), l, h, v
            FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::timestamptz[],
                        $6::float8[], $7::text[]) AS t(e, s, r, c, l, h, v)
            """,
            [r["e164"] for r in rows],
            [r["status"] for r in rows],
            [r["reporters"] for r in rows],
            [r["category"] for r in rows],
            [r["last"] for r in rows],
            [r["heat_key"] for r in rows],
            [r["verdict"] for r in rows],
        )
        await conn.execute("ANALYZE numbers")
    finally:
        await conn.close()
    return rows


def expected(rows: list[dict[str, Any]], order: str) -> list[str]:
    """The order the queue must give, computed independently of the service."""
    keys = {
        "reporters": lambda r: float(r["reporters"]),
        "heat": lambda r: r["heat_key"],
        "recent": lambda r: r["last"].timestamp() if r["last"] else -math.inf,  # never: last
    }[order]
    return [e164 for _, e164 in sorted(((keys(r), r["e164"]) for r in rows), reverse=True)]


async def page_through(client: TestClient, **params: str) -> tuple[list[str], int]:
    numbers: list[str] = []
    pages = 0
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/v1/numbers", params=query)
        assert response.status == 200, await response.text()
        body = await response.json()
        numbers += [item["number"] for item in body["numbers"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return numbers, pages


@pytest.fixture
async def seeded(client: TestClient, settings: Settings, clock: FakeClock) -> list[dict[str, Any]]:
    return await seed(settings, clock.now)


@pytest.mark.parametrize("order", ["recent", "reporters", "heat"])
async def test_pages_through_10k_numbers_without_gaps_or_repeats(
    client: TestClient, seeded: list[dict[str, Any]], order: str
) -> None:
    want = expected(seeded, order)
    numbers, pages = await page_through(client, order=order, limit="1000")
    assert pages == 10
    assert len(set(numbers)) == COUNT
    assert numbers == want


@pytest.mark.parametrize(
    ("params", "keep"),
    [
        ({"status": "confirmed"}, lambda r: r["status"] == "confirmed"),
        ({"status": "reported"}, lambda r: r["status"] == "reported"),
        ({"status": "cleared", "order": "heat"}, lambda r: r["status"] == "cleared"),
        ({"category": "spam_call", "order": "reporters"}, lambda r: r["category"] == "spam_call"),
        ({"verdict": "block", "order": "heat"}, lambda r: r["verdict"] == "block"),
        (
            {"status": "confirmed", "category": "scam", "order": "reporters"},
            lambda r: r["status"] == "confirmed" and r["category"] == "scam",
        ),
    ],
)
async def test_filters(
    client: TestClient, seeded: list[dict[str, Any]], params: dict[str, str], keep: Any
) -> None:
    numbers, _ = await page_through(client, limit="333", **params)
    assert sorted(numbers) == sorted(r["e164"] for r in seeded if keep(r))
    assert len(numbers) == len(set(numbers))


async def test_cursors_are_stable_while_numbers_arrive(
    client: TestClient, settings: Settings, seeded: list[dict[str, Any]], clock: FakeClock
) -> None:
    first = await (await client.get("/v1/numbers", params={"limit": "100"})).json()
    cursor = first["next_cursor"]
    second = await client.get("/v1/numbers", params={"limit": "100", "cursor": cursor})
    second_body = await second.json()
    # Fresh reports put new numbers at the head of the queue meanwhile...
    for i in range(30):
        response = await client.post(
            "/v1/reports", json={"number": f"+8498{i:07d}", "reporter": "0912000001"}
        )
        assert response.status == 201
    # ...yet the same cursor gives the same page: nothing shifts, nothing repeats.
    again = await client.get("/v1/numbers", params={"limit": "100", "cursor": cursor})
    assert await again.json() == second_body
    fresh = await (await client.get("/v1/numbers", params={"limit": "100"})).json()
    assert fresh["numbers"][0]["number"].startswith("+8498")
    assert first["numbers"][0]["number"] in [n["number"] for n in fresh["numbers"]]


@pytest.mark.parametrize(
    ("query", "index"),
    [
        ("queue_by_recent", "numbers_recent_idx"),
        ("queue_by_reporters", "numbers_reporters_idx"),
        ("queue_by_heat", "numbers_heat_idx"),
        ("queue_by_recent_reviewed", "numbers_reviewed_recent_idx"),
        ("queue_by_reporters_reviewed", "numbers_reviewed_reporters_idx"),
        ("queue_by_heat_reviewed", "numbers_reviewed_heat_idx"),
    ],
)
async def test_a_deep_page_is_one_index_range_scan(
    settings: Settings, seeded: list[dict[str, Any]], query: str, index: str
) -> None:
    """No OFFSET: the cursor's key bounds an index scan (in queue order on the big indexes;
    the small partial ones of reviewed numbers may be read by bitmap and sorted)."""
    key: Any = {"queue_by_recent": datetime.min, "queue_by_reporters": 5, "queue_by_heat": 2950.0}[
        query.removesuffix("_reviewed")
    ]
    if query.endswith("recent") or query.endswith("recent_reviewed"):
        key = seeded[5000]["last"]
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        plan = "\n".join(
            row[0]
            for row in await conn.fetch(
                "EXPLAIN " + queries()[query], None, None, None, False, key, "+849", 51
            )
        )
    finally:
        await conn.close()
    assert index in plan, plan
    assert "Index Cond: (ROW(" in plan, plan
    if not query.endswith("_reviewed"):
        assert "Sort" not in plan, plan
