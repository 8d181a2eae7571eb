"""Distinct reporters, the daily cap and decay, through the API on a real PostgreSQL."""

from __future__ import annotations

import dataclasses
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from reputation.app import create_app
from reputation.appkeys import SWEEPER
from reputation.settings import Settings
from tests.conftest import FakeClock, wait_ready

NUMBER = "+84912345678"


async def report(client: TestClient, number: str, reporter: str, **fields: Any) -> dict[str, Any]:
    response = await client.post(
        "/v1/reports", json={"number": number, "reporter": reporter, **fields}
    )
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def lookup(client: TestClient, number: str, **query: str) -> dict[str, Any]:
    response = await client.get(f"/v1/numbers/{number}", params=query)
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def fetch(settings: Settings, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(settings.database_url)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
        return rows
    finally:
        await conn.close()


def reporter_number(i: int) -> str:
    return f"+8498{i:07d}"


async def test_one_reporter_reporting_a_number_100_times_counts_once(
    client: TestClient, settings: Settings, clock: FakeClock
) -> None:
    for _ in range(100):
        await report(client, NUMBER, "0987000001")
        clock.advance(minutes=7)  # spread over more than one day
    body = await lookup(client, NUMBER)
    assert body["reports"] == 100
    assert body["reporters"] == 1
    assert body["verdict"] == "allow"
    assert body["score"] == round(1 / 9, 3)
    rows = await fetch(
        settings, "SELECT count(*) FILTER (WHERE counted) AS c FROM reports WHERE e164 = $1", NUMBER
    )
    # Counted once per reporting day (renewed, never added): 700 minutes span two days.
    assert rows[0]["c"] == 2


async def test_only_the_first_20_numbers_of_a_reporter_count_each_day(
    client: TestClient, settings: Settings, clock: FakeClock
) -> None:
    numbers = [f"+849123450{i:02d}" for i in range(25)]
    for number in numbers:
        await report(client, number, "0987000001")
    counted = [(await lookup(client, number))["reporters"] for number in numbers]
    assert counted == [1] * 20 + [0] * 5
    kept = [(await lookup(client, number))["reports"] for number in numbers]
    assert kept == [1] * 25
    rows = await fetch(settings, "SELECT count(*) AS n FROM reports WHERE NOT counted")
    assert rows[0]["n"] == 5

    # The next reporting day (midnight in Vietnam, 17:00 UTC) the reporter counts again.
    clock.advance(hours=4, minutes=59)  # 16:59 UTC: still the same day
    await report(client, numbers[20], "0987000001")
    assert (await lookup(client, numbers[20]))["reporters"] == 0
    clock.advance(minutes=2)
    await report(client, numbers[20], "0987000001")
    assert (await lookup(client, numbers[20]))["reporters"] == 1
    # Other reporters are not capped by this one.
    await report(client, numbers[24], "0987000002")
    assert (await lookup(client, numbers[24]))["reporters"] == 1


async def test_anonymous_reports_of_one_channel_are_one_reporter(client: TestClient) -> None:
    for _ in range(5):
        response = await client.post("/v1/reports", json={"number": NUMBER, "channel": "app"})
        assert response.status == 201
    response = await client.post("/v1/reports", json={"number": NUMBER, "channel": "sms"})
    assert response.status == 201
    body = await lookup(client, NUMBER)
    assert body["reports"] == 6
    assert body["reporters"] == 2
    assert body["verdict"] == "allow"


async def test_decay_with_a_fixed_clock(
    client: TestClient, settings: Settings, clock: FakeClock
) -> None:
    for i in range(10):
        await report(client, NUMBER, reporter_number(i))
    body = await lookup(client, NUMBER)
    assert (body["verdict"], body["reasons"]) == ("block", ["reported_by_many"])
    assert body["heat"] == 10.0
    assert body["confidence"] == round(10 / (10 + 1.96**2), 3)

    async def stored() -> tuple[str, list[str]]:
        row = (await fetch(settings, "SELECT verdict FROM numbers WHERE e164 = $1", NUMBER))[0]
        kinds = await fetch(
            settings, "SELECT kind FROM changes WHERE e164 = $1 ORDER BY seq", NUMBER
        )
        return row["verdict"], [k["kind"] for k in kinds]

    assert await stored() == ("block", ["report"] * 10)
    sweeper = client.app[SWEEPER]

    # 13 days on: 10 * 2^(-13/90) = 9.05, still block; nothing to sweep.
    clock.advance(days=13)
    assert (await lookup(client, NUMBER))["verdict"] == "block"
    assert await sweeper.run_once() == 0
    # 14 days on: 8.98 < 9. The answer changes at once; the stored verdict at the sweep.
    clock.advance(days=1)
    body = await lookup(client, NUMBER)
    assert (body["verdict"], body["reasons"]) == ("warn", ["reported_by_several"])
    assert body["heat"] < 3
    assert await sweeper.run_once() == 1
    assert await stored() == ("warn", ["report"] * 10 + ["decay"])
    assert await sweeper.run_once() == 0  # swept once only

    # A year of silence: back to allow, and the export sees a change row for it.
    clock.advance(days=351)
    body = await lookup(client, NUMBER)
    assert (body["verdict"], body["reasons"]) == ("allow", ["old_reports"])
    assert body["reporters"] == 10
    assert await sweeper.run_once() == 1
    assert await stored() == ("allow", ["report"] * 10 + ["decay", "decay"])
    due = await fetch(settings, "SELECT verdict_changes_at FROM numbers WHERE e164 = $1", NUMBER)
    assert due[0]["verdict_changes_at"] is None

    # The same reporters report again: their weight is renewed, not added to.
    for i in range(10):
        await report(client, NUMBER, reporter_number(i))
    body = await lookup(client, NUMBER)
    assert (body["verdict"], body["reporters"], body["reports"]) == ("block", 10, 20)
    assert await stored() == ("block", ["report"] * 10 + ["decay", "decay"] + ["report"] * 10)


async def test_changed_verdict_settings_rejudge_every_stored_verdict_once(
    aiohttp_client: Any, settings: Settings, clock: FakeClock
) -> None:
    first = await aiohttp_client(create_app(settings, clock=clock))
    await wait_ready(first)
    for i in range(3):
        await report(first, NUMBER, reporter_number(i))
    await report(first, "+84987654321", reporter_number(0))
    await first.app[SWEEPER].run_once()  # stores the policy in force
    await first.close()

    stricter = dataclasses.replace(settings, warn_threshold=3.5, block_threshold=12.0)
    second = await aiohttp_client(create_app(stricter, clock=clock))
    await wait_ready(second)
    assert (await lookup(second, NUMBER))["verdict"] == "allow"  # judged afresh at once
    assert await second.app[SWEEPER].run_once() in (0, 1)  # the start-up sweep may be first
    rows = await fetch(settings, "SELECT e164, verdict FROM numbers ORDER BY e164")
    assert [(r["e164"], r["verdict"]) for r in rows] == [
        (NUMBER, "allow"),
        ("+84987654321", "allow"),
    ]
    kinds = await fetch(settings, "SELECT e164, kind FROM changes WHERE kind = 'policy'")
    assert [(k["e164"], k["kind"]) for k in kinds] == [(NUMBER, "policy")]
    assert await second.app[SWEEPER].run_once() == 0  # once only
