"""Reports written a group at a time leave exactly what writing them one by one leaves."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from reputation.records import NewReport
from reputation.settings import Settings
from reputation.store import Store, create_pool
from tests.conftest import TEST_REPORTER_KEY, FakeClock, fresh_database

# A small daily cap, so that one group can run past it.
DAILY_CAP = 3
START = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)  # 09:00 in Vietnam
NUMBERS = [f"+8491234567{i}" for i in range(8)]
REPORTERS = [f"+8498765432{i}" for i in range(5)]


def report(
    number: int,
    reporter: int | None,
    minutes: float,
    category: str = "scam",
    key: str | None = None,
    channel: str = "app",
) -> NewReport:
    return NewReport(
        e164=NUMBERS[number],
        reporter=REPORTERS[reporter] if reporter is not None else None,
        channel=channel,
        category=category,
        content=f"report at {minutes} min",
        idempotency_key=key,
        received_at=START + timedelta(minutes=minutes),
    )


DAY = 24 * 60
# One group that touches the same numbers and reporters many times over.
GROUP = [
    report(0, 0, 0),  # new reporter, counts
    report(0, 0, 1),  # same reporter, same day: kept, not counted
    report(0, 1, 2, "spam_call"),  # a second reporter
    report(1, 0, 3, key="k-1"),
    report(2, 0, 4),  # the reporter's third number today: the last one the cap allows
    report(3, 0, 5),  # over the cap: kept, not counted
    report(3, 0, 6),  # still over the cap, still not counted
    report(0, 0, DAY + 10, "impersonation"),  # a later day: renewed in another category
    report(3, 0, DAY + 11),  # a later day: counted now
    report(4, None, 20),  # anonymous reports of one channel: one reporter
    report(4, None, 21, channel="sms"),
    report(4, None, 22),
    report(5, 2, 30, key="k-2"),
    report(5, 3, 31, key="k-2"),  # the same key again in the group: not kept
    report(6, 4, 40),  # a number cleared before: this reporter reported it then
    report(6, 3, 41),  # a reporter new since the clearing counts
    report(7, 2, 50),  # a protected number
    report(1, 1, 51, key="k-3"),
    report(1, 1, DAY + 52, "telemarketing", key="k-4"),
]


@pytest.fixture
async def other_database_url(
    postgres_server_url: str, template_database: str
) -> AsyncIterator[str]:
    """A second fresh database, to write the same reports another way."""
    async with fresh_database(postgres_server_url, template_database) as url:
        yield url


def store_settings(url: str) -> Settings:
    return Settings(database_url=url, reporter_key=TEST_REPORTER_KEY, reporter_daily_cap=DAILY_CAP)


async def prepare(store: Store) -> None:
    """The same history in every database: an earlier report, a clearing, a protected number."""
    earlier = dataclasses.replace(report(6, 4, -DAY), received_at=START - timedelta(days=1))
    assert await store.record_reports([earlier]) == (1, 0)
    await store.set_status(NUMBERS[6], "cleared", "checked by phone", "analyst")
    await store.protect(NUMBERS[7], "Bank hotline", None, "analyst")


async def state(url: str) -> dict[str, list[Any]]:
    """Everything a report writes, as comparable values (ids and update times left out)."""
    conn = await asyncpg.connect(url)
    try:
        tables = {
            "numbers": "SELECT e164, status, reports, reporters, categories::text, "
            "first_reported_at, last_reported_at, weights::text, weights_at, heat_key, "
            "cleared_at, verdict, verdict_changes_at FROM numbers ORDER BY e164",
            "number_reporters": "SELECT * FROM number_reporters ORDER BY e164, reporter_hash",
            "reporter_days": "SELECT * FROM reporter_days ORDER BY reporter_hash, day",
            "reports": "SELECT e164, reporter_hash, channel, category, content, received_at, "
            "idempotency_key, request_hash, counted, reporter_masked FROM reports ORDER BY id",
            "changes": "SELECT e164, kind FROM changes ORDER BY seq",
            "list_entries": "SELECT e164, listed, verdict, category, reports, reporters "
            "FROM list_entries ORDER BY e164",
        }
        return {name: [tuple(row) for row in await conn.fetch(sql)] for name, sql in tables.items()}
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def open_store(url: str, clock: FakeClock) -> AsyncIterator[Store]:
    settings = store_settings(url)
    async with create_pool(url, settings) as pool:
        yield Store(pool, TEST_REPORTER_KEY.encode(), clock, settings)


# Whether each report of GROUP counts, in order (the one whose key the group reused is not kept).
COUNTED = [True, False, True, True, True, False, False, True, True, True, True, False, True]
COUNTED += [False, True, True, True, True]


async def test_a_group_leaves_exactly_what_writing_its_reports_one_by_one_leaves(
    database_url: str, other_database_url: str
) -> None:
    clock = FakeClock(START - timedelta(hours=1))
    async with (
        open_store(database_url, clock) as grouped,
        open_store(other_database_url, clock) as one_by_one,
    ):
        await prepare(grouped)
        await prepare(one_by_one)
        assert await grouped.record_reports(GROUP) == (len(GROUP) - 1, 1)
        added = present = 0
        for item in GROUP:
            one_added, one_present = await one_by_one.record_reports([item])
            added, present = added + one_added, present + one_present
        assert (added, present) == (len(GROUP) - 1, 1)
    together, alone = await state(database_url), await state(other_database_url)
    for table in together:
        assert together[table] == alone[table], table
    # And what both left is what the rules say.
    assert [row[8] for row in together["reports"]] == [True, *COUNTED]
    conn = await asyncpg.connect(database_url)
    try:
        days = await conn.fetch(
            "SELECT d.day, d.numbers FROM reporter_days d JOIN reports r "
            "ON r.reporter_hash = d.reporter_hash WHERE r.reporter_masked = $1 "
            "GROUP BY 1, 2 ORDER BY 1",
            "+84 98x xxx x20",
        )
        numbers = {
            row["e164"]: row
            for row in await conn.fetch("SELECT e164, reports, reporters, verdict FROM numbers")
        }
    finally:
        await conn.close()
    assert [row["numbers"] for row in days] == [DAILY_CAP, 2]
    assert (numbers[NUMBERS[0]]["reports"], numbers[NUMBERS[0]]["reporters"]) == (4, 2)
    assert (numbers[NUMBERS[3]]["reports"], numbers[NUMBERS[3]]["reporters"]) == (3, 1)
    assert (numbers[NUMBERS[4]]["reports"], numbers[NUMBERS[4]]["reporters"]) == (3, 2)
    assert (numbers[NUMBERS[6]]["reports"], numbers[NUMBERS[6]]["reporters"]) == (3, 2)


async def test_a_taken_key_in_a_group_counts_nothing_and_creates_no_number(
    database_url: str,
) -> None:
    async with open_store(database_url, FakeClock(START)) as store:
        assert await store.record_reports([report(0, 0, 0, key="taken")]) == (1, 0)
        # The same key about a number nobody reported: nothing of it may stay.
        group = [report(1, 1, 1, key="taken"), report(2, 1, 2), report(3, 1, 3, key="fresh")]
        assert await store.record_reports(group) == (2, 1)
        assert await store.record_reports([report(4, 2, 4, key="taken")]) == (0, 1)
    conn = await asyncpg.connect(database_url)
    try:
        known = [row[0] for row in await conn.fetch("SELECT e164 FROM numbers ORDER BY e164")]
        days = await conn.fetchval("SELECT sum(numbers) FROM reporter_days")
        day_rows = await conn.fetchval("SELECT count(*) FROM reporter_days")
        changes = await conn.fetchval("SELECT count(*) FROM changes")
        reports = await conn.fetchval("SELECT count(*) FROM reports")
    finally:
        await conn.close()
    assert known == [NUMBERS[0], NUMBERS[2], NUMBERS[3]]
    # Reporter 1 counted on two numbers, reporter 2 on none (no row at all).
    assert (days, day_rows) == (3, 2)
    assert changes == reports == 3


async def test_concurrent_groups_on_two_nodes_count_each_reporter_once(
    database_url: str,
) -> None:
    clock = FakeClock(START)
    reports = [
        report(number, reporter, 0, key=f"{number}-{reporter}-{n}" if n == 1 else None)
        for number in range(6)
        for reporter in range(5)
        for n in range(3)
    ]
    # Every report dated by the clock: they all fall on the same day.
    reports = [dataclasses.replace(item, received_at=None) for item in reports]
    random.Random(6).shuffle(reports)
    settings = Settings(database_url=database_url, reporter_key=TEST_REPORTER_KEY)
    async with (
        create_pool(database_url, settings) as first_pool,
        create_pool(database_url, settings) as second_pool,
    ):
        nodes = [
            Store(pool, TEST_REPORTER_KEY.encode(), clock, settings)
            for pool in (first_pool, second_pool)
        ]
        recorded = await asyncio.gather(
            *(nodes[i % 2].record_report(item) for i, item in enumerate(reports))
        )
    assert not any(item.replayed for item in recorded)
    conn = await asyncpg.connect(database_url)
    try:
        numbers = await conn.fetch("SELECT reports, reporters FROM numbers")
        counted = await conn.fetchval("SELECT count(*) FROM reports WHERE counted")
        stored = {row[0] for row in await conn.fetch("SELECT id FROM reports")}
        days = await conn.fetch("SELECT numbers FROM reporter_days")
        transactions = await conn.fetchval("SELECT count(DISTINCT xmin::text) FROM reports")
    finally:
        await conn.close()
    assert stored == {item.report.id for item in recorded}
    assert sorted(tuple(row) for row in numbers) == [(15, 5)] * 6
    assert counted == 30
    assert sorted(row[0] for row in days) == [6] * 5
    assert transactions < len(reports)
