"""PostgreSQL goes away and comes back: lookups go on, and every report counts exactly once.

These tests stop and start a PostgreSQL server of their own (``own_postgres``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient

from reputation import intake
from reputation.app import create_app
from reputation.appkeys import LOOKUPS, SPOOL, STORE
from reputation.embedded import EmbeddedPostgres
from reputation.metrics import Metrics
from reputation.records import NewReport
from reputation.settings import Settings
from reputation.spool import Spool, pending_records
from tests.conftest import (
    TEST_GATEWAY_SECRET,
    FakeClock,
    SmsGateway,
    add_api_key,
    bearer,
    settings_with_auth,
    wait_ready,
)
from tests.integration.test_lifecycle import metric_value
from tests.integration.test_openapi import conforms

Client = Callable[..., Awaitable[TestClient]]


def node_app(client: TestClient) -> web.Application:
    app = client.server.app
    assert app is not None
    return app


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 15.0) -> None:
    async with asyncio.timeout(seconds):
        while not await check():  # noqa: ASYNC110 (polls HTTP)
            await asyncio.sleep(0.05)


async def lookup(client: TestClient, number: str) -> dict[str, Any]:
    response = await client.get(f"/v1/numbers/{number}")
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def count(database_url: str, sql: str, *args: object) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        value: int = await conn.fetchval(sql, *args)
        return value
    finally:
        await conn.close()


async def test_postgres_outage(
    own_postgres: EmbeddedPostgres,
    own_settings: Settings,
    clock: FakeClock,
    aiohttp_client: Client,
) -> None:
    url = own_settings.database_url
    assert url is not None
    admin_key = await add_api_key(url, "admin", "test admin")
    gateway_key = await add_api_key(url, "sms_gateway", "test gateway")
    settings = settings_with_auth(
        own_settings,
        sms_gateway_secret=TEST_GATEWAY_SECRET,
        feed_poll_interval=0.2,
        reporter_rate_limit="off",
    )
    reporting: TestClient = await aiohttp_client(
        create_app(settings, clock=clock), headers=bearer(admin_key)
    )
    other_dir = own_settings.data_dir / "other"
    looking: TestClient = await aiohttp_client(
        create_app(dataclasses.replace(settings, data_dir=other_dir), clock=clock),
        headers=bearer(admin_key),
    )
    await wait_ready(reporting)
    await wait_ready(looking)
    gateway = SmsGateway(reporting, gateway_key, admin_key)

    async def report(number: str, reporter: str, key: str | None = None) -> int:
        headers = {"Idempotency-Key": key} if key else {}
        response = await reporting.post(
            "/v1/reports", json={"number": number, "reporter": reporter}, headers=headers
        )
        return response.status

    # Before: "looking" caches 0912000001 (2 reports), then a third report expires
    # that entry there (kept as its last known answer); 0912000002 is reported but
    # never looked up on "looking".
    assert await report("0912000001", "0987000001") == 201
    assert await report("0912000001", "0987000002") == 201

    async def both_seen() -> bool:
        return bool((await lookup(looking, "0912000001"))["reports"] == 2)

    await eventually(both_seen)  # and now cached on "looking"
    assert await report("0912000001", "0987000003") == 201
    assert await report("0912000002", "0987000001") == 201
    lookups = node_app(looking)[LOOKUPS]

    async def feed_applied_both() -> bool:
        number_filter = lookups.filter
        return (
            number_filter is not None
            and "+84912000002" in number_filter
            and "+84912000001" not in lookups.cache  # expired, kept as last known
        )

    await eventually(feed_applied_both)

    port = own_postgres.port
    await asyncio.to_thread(own_postgres.stop)
    try:
        # Lookups go on from memory.
        never = await lookup(looking, "0987654321")
        assert never["reported"] is False
        assert never["degraded"] is False
        last_known = await lookup(looking, "0912000001")
        assert last_known["degraded"] is True
        assert last_known["reports"] == 2
        fail_open = await lookup(looking, "0912000002")
        assert fail_open["degraded"] is True, fail_open
        assert fail_open["verdict"] == "allow"
        assert fail_open["reported"] is False
        ready = await looking.get("/readyz")
        assert ready.status == 200
        assert (await ready.json())["status"] == "degraded"
        exposition = await (await looking.get("/metrics")).text()
        assert (
            metric_value(exposition, 'reputation_lookups_total{layer="last_known",verdict="allow"}')
            == 1
        )
        assert (
            metric_value(exposition, 'reputation_lookups_total{layer="fail_open",verdict="allow"}')
            == 1
        )
        assert metric_value(exposition, "reputation_database_up") == 0

        # Reports are taken into the spool: API reports with and without a key
        # (one key sent twice), SMS messages (one delivered twice).
        statuses = [await report("0912000003", f"098700001{i}") for i in range(5)]
        for _ in range(2):  # a client retrying with its key
            statuses.append(await report("0912000004", "0987000020", key="client-key-1"))
        assert statuses == [202] * 7
        queued = await conforms(
            await reporting.post("/v1/reports", json={"number": "0912000005"}),
            "POST",
            "/v1/reports",
            202,
        )
        assert queued["queued"] is True
        assert queued["report"]["id"] is None
        assert queued["idempotency_key"].startswith("spool:")
        for i in range(5):
            status, answer = await gateway.post(
                {
                    "message_id": f"outage-{i}",
                    "from": f"8498700003{i}",
                    "to": "156",
                    "text": f"LD 0912000006 lừa đảo lần {i}",
                }
            )
            assert status == 200
            assert answer["accepted"] is True
            assert answer["queued"] is True
            assert "0912000006" in answer["reply"]
        status, again = await gateway.post(
            {
                "message_id": "outage-0",
                "from": "84987000030",
                "to": "156",
                "text": "LD 0912000006 lừa đảo lần 0",
            }
        )
        assert status == 200
        assert again["accepted"] is True
        bad = {"message_id": "outage-bad", "from": "84987000039", "to": "156", "text": "chào"}
        refused = await conforms(await gateway.deliver(bad), "POST", "/v1/sms/inbound", 200)
        assert refused["accepted"] is False
        assert refused["error"] == "missing_keyword"
        spool = node_app(reporting)[SPOOL]
        assert len(spool.pending) == 7 + 1 + 6 + 1
    finally:
        await asyncio.to_thread(own_postgres.start, port)

    async def spool_empty() -> bool:
        return not node_app(reporting)[SPOOL].pending

    await eventually(spool_empty)
    assert await count(url, "SELECT count(*) FROM reports WHERE e164 = '+84912000003'") == 5
    assert await count(url, "SELECT count(*) FROM reports WHERE e164 = '+84912000004'") == 1
    assert await count(url, "SELECT count(*) FROM reports WHERE e164 = '+84912000005'") == 1
    assert await count(url, "SELECT count(*) FROM reports WHERE e164 = '+84912000006'") == 5
    assert (
        await count(url, "SELECT count(*) FROM sms_messages WHERE message_id LIKE 'outage-%'") == 6
    )

    async def seen_everywhere() -> bool:
        body = await lookup(looking, "0912000003")
        return body["reports"] == 5 and body["degraded"] is False

    await eventually(seen_everywhere)
    assert (await lookup(looking, "0912000006"))["reports"] == 5
    assert (await (await looking.get("/readyz")).json())["status"] == "ready"


async def test_a_replay_interrupted_before_it_was_marked_done_counts_once(
    own_settings: Settings, clock: FakeClock, aiohttp_client: Client
) -> None:
    """A crash between replaying a record and writing its "done" line replays it again."""
    node: TestClient = await aiohttp_client(create_app(own_settings, clock=clock))
    await wait_ready(node)
    app = node_app(node)
    spool = app[SPOOL]
    keyless = NewReport("+84912000007", "+84987000001", "api", "scam", None)
    queued = await intake._queue(app, keyless, None)  # as if PostgreSQL had been down
    await intake.replay_report(app, queued.record)  # replayed, then the node "crashes"
    assert queued.record.id in spool.pending

    # The next process of this data directory takes the file over and replays it.
    os.close(spool._fd)  # type: ignore[arg-type]  # the lock goes with the process
    spool._fd = None
    spool.pending.clear()  # and so does its memory
    successor = Spool(spool.directory, own_settings.spool_max_bytes, Metrics())
    successor.register(intake.REPORT_KIND, lambda record: intake.replay_report(app, record))
    await successor.open()
    assert [r.id for r in successor.pending.values()] == [queued.record.id]
    assert await successor.replay() == 1
    await successor.close()
    url = own_settings.database_url
    assert url is not None
    assert await count(url, "SELECT count(*) FROM reports WHERE e164 = '+84912000007'") == 1
    assert not await asyncio.to_thread(lambda: list(spool.directory.glob("spool-*.log")))


async def test_a_report_whose_commit_was_not_acknowledged_is_replayed_only_if_lost(
    own_settings: Settings, clock: FakeClock, aiohttp_client: Client
) -> None:
    node: TestClient = await aiohttp_client(create_app(own_settings, clock=clock))
    await wait_ready(node)
    app = node_app(node)
    store = app[STORE]
    # A report whose COMMIT went through, though its client saw the connection drop.
    kept = await store.record_report(NewReport("+84912000008", "+84987000001", "api", "scam", None))
    url = own_settings.database_url
    assert url is not None
    txid = await count(url, "SELECT txid FROM changes WHERE seq = $1", kept.change_seq)
    committed = await intake._queue(
        app, NewReport("+84912000008", "+84987000001", "api", "scam", None), txid
    )
    await intake.replay_report(app, committed.record)
    assert await count(url, "SELECT count(*) FROM reports WHERE e164 = '+84912000008'") == 1

    # One whose transaction was rolled back: replayed.
    conn = await asyncpg.connect(url)
    try:
        tx = conn.transaction()
        await tx.start()
        aborted = await conn.fetchval("SELECT pg_current_xact_id()::text::bigint")
        await tx.rollback()
    finally:
        await conn.close()
    lost = await intake._queue(
        app, NewReport("+84912000009", "+84987000001", "api", "scam", None), aborted
    )
    await intake.replay_report(app, lost.record)
    assert await count(url, "SELECT count(*) FROM reports WHERE e164 = '+84912000009'") == 1
    await app[SPOOL].replay()  # both settle; nothing counts twice
    assert (
        await count(
            url, "SELECT count(*) FROM reports WHERE e164 IN ('+84912000008', '+84912000009')"
        )
        == 2
    )


async def test_a_spool_line_torn_by_a_crash_is_ignored(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20, Metrics())
    spool.register("report", _never)
    await spool.open()
    first = await spool.append("report", {"n": 1})
    await spool.append("report", {"n": 2})
    await asyncio.to_thread(_append_torn_line, spool.path)
    records = pending_records(spool.path)
    assert [r.payload for r in records] == [{"n": 1}, {"n": 2}]
    assert records[0].id == first.id
    await spool.close()


async def test_a_full_spool_refuses_with_503_and_retry_after(
    own_postgres: EmbeddedPostgres,
    own_settings: Settings,
    clock: FakeClock,
    aiohttp_client: Client,
) -> None:
    node: TestClient = await aiohttp_client(
        create_app(dataclasses.replace(own_settings, spool_max_bytes=600), clock=clock)
    )
    await wait_ready(node)
    port = own_postgres.port
    await asyncio.to_thread(own_postgres.stop)
    try:
        statuses = []
        for i in range(6):
            response = await node.post(
                "/v1/reports", json={"number": "0912000010", "reporter": f"09870001{i:02d}"}
            )
            statuses.append(response.status)
            if response.status == 503:
                assert response.headers["Retry-After"].isdigit()
                assert (await response.json())["error"]["code"] == "database_unavailable"
        assert statuses[0] == 202
        assert statuses[-1] == 503
    finally:
        await asyncio.to_thread(own_postgres.start, port)

    async def replayed() -> bool:
        return not node_app(node)[SPOOL].pending

    await eventually(replayed)
    url = own_settings.database_url
    assert url is not None
    kept = await count(url, "SELECT count(*) FROM reports WHERE e164 = '+84912000010'")
    assert kept == statuses.count(202)


async def _never(record: Any) -> None:
    raise AssertionError(f"not replayed here: {record}")


def _append_torn_line(path: Path) -> None:
    """What a crash in the middle of a write leaves: a line without its end."""
    with path.open("ab") as handle:
        handle.write(b'1234abcd {"id": "torn')


async def test_a_readiness_probe_that_waits_for_a_busy_pool_does_not_declare_postgres_down(
    settings: Settings, clock: FakeClock, aiohttp_client: Client
) -> None:
    """A node under load may keep every connection busy for more than a second:
    the probe must not send the next reports to the spool for that."""
    node: TestClient = await aiohttp_client(create_app(settings, clock=clock))
    await wait_ready(node)
    pool = node_app(node)[STORE].pool
    held = [await pool.acquire() for _ in range(settings.pool_max_size)]
    try:
        body = await (await node.get("/readyz")).json()
    finally:
        for connection in held:
            await pool.release(connection)
    assert (body["status"], body["database"]) == ("ready", "up")
    response = await node.post(
        "/v1/reports", json={"number": "0912000011", "reporter": "0987000111"}
    )
    assert response.status == 201, await response.text()
