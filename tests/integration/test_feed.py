"""Several nodes, one truth: the change feed, pruning, reloads and filter snapshots.

Each node here is a complete app (its own pool, Bloom filter, cache and
change feed) on the test's own database, reached through real HTTP.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.test_utils import TestClient

from reputation.app import create_app, utc_now
from reputation.appkeys import FEED, FILTERS, LOOKUPS, STORE
from reputation.bloom import NumberFilter
from reputation.changes import FeedPosition
from reputation.feed import LISTEN_APPLICATION_NAME, ChangeFeed
from reputation.health import DatabaseHealth
from reputation.metrics import Metrics
from reputation.settings import Settings
from reputation.store import FeedHead, Store, create_pool
from tests.conftest import FakeClock, wait_ready
from tests.integration.test_lifecycle import metric_value

Client = Callable[..., Awaitable[TestClient]]


async def start_node(aiohttp_client: Any, settings: Settings, clock: FakeClock) -> TestClient:
    client: TestClient = await aiohttp_client(create_app(settings, clock=clock))
    await wait_ready(client)
    return client


def quiet(settings: Settings, **changes: Any) -> Settings:
    """Settings whose feed never polls on its timer: only NOTIFY and reconnections wake it."""
    return dataclasses.replace(settings, feed_poll_interval=3600.0, **changes)


def node_app(client: TestClient) -> web.Application:
    app = client.server.app
    assert app is not None
    return app


async def report(client: TestClient, number: str, reporter: str = "0987000001") -> None:
    response = await client.post("/v1/reports", json={"number": number, "reporter": reporter})
    assert response.status == 201, await response.text()


async def reports_seen(client: TestClient, number: str) -> int:
    body = await (await client.get(f"/v1/numbers/{number}")).json()
    return int(body["reports"])


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 5.0) -> None:
    """Wait until ``check`` holds; fail after ``seconds``."""
    async with asyncio.timeout(seconds):
        while not await check():  # noqa: ASYNC110 (polls HTTP)
            await asyncio.sleep(0.01)


def numbers(count: int, start: int = 0) -> list[str]:
    return [f"091{i:07d}" for i in range(start, start + count)]


async def test_a_change_committed_after_a_later_one_is_not_skipped(
    database_url: str, settings: Settings
) -> None:
    """Sequence numbers are not commit-ordered; the feed reads by commit, not by seq."""
    async with create_pool(database_url, settings) as pool:
        store = Store(pool, b"key", utc_now)

        async def no_reload() -> FeedHead:
            raise AssertionError("nothing was pruned: no reload expected")

        feed = ChangeFeed(store, settings, Metrics(), DatabaseHealth(), reload=no_reload)
        seen: list[str] = []
        feed.subscribe(lambda changes: seen.extend(c.e164 for c in changes))
        async with store.consistent_read() as read:
            feed.head = await read.head()

        async with pool.acquire() as slow, pool.acquire() as fast:
            slow_tx = slow.transaction()
            await slow_tx.start()
            early_seq = await store.append_change(slow, "+84910000001", "report")
            async with fast.transaction():
                late_seq = await store.append_change(fast, "+84910000002", "report")
            # A third writer in between rolls back: its seq never appears.
            async with pool.acquire() as aborted:
                tx = aborted.transaction()
                await tx.start()
                await store.append_change(aborted, "+84910000003", "report")
                await tx.rollback()
            assert early_seq < late_seq

            assert await feed.catch_up() == 1
            assert seen == ["+84910000002"]
            await slow_tx.commit()
            assert await feed.catch_up() == 1
            assert seen == ["+84910000002", "+84910000001"]
            assert await feed.catch_up() == 0
        assert seen == ["+84910000002", "+84910000001"]


async def test_position_round_trips_through_text() -> None:
    position = FeedPosition.parse("100:110:103,107")
    assert position.in_progress == {103, 107}
    assert str(position) == "100:110:103,107"
    assert position.includes(99)
    assert position.includes(105)
    assert not position.includes(103)
    assert not position.includes(110)
    assert FeedPosition.parse("7:7:") == FeedPosition(7, 7, frozenset())


async def test_report_on_one_node_is_seen_on_the_other(
    settings: Settings, clock: FakeClock, aiohttp_client: Client
) -> None:
    one = await start_node(aiohttp_client, quiet(settings), clock)
    other = await start_node(aiohttp_client, quiet(settings), clock)
    await eventually(lambda: _listening(other))
    assert await reports_seen(other, "0912345678") == 0  # cached: "not listed"

    await report(one, "0912345678")
    # The timer never fires: the notification alone brings the change.
    await eventually(lambda: _reports_are(other, "0912345678", 1))

    await report(other, "0912345678", reporter="0987000002")
    await eventually(lambda: _reports_are(one, "0912345678", 2))
    assert await reports_seen(other, "0912345678") == 2


async def test_a_change_appended_by_any_writer_reaches_every_node(
    settings: Settings, clock: FakeClock, aiohttp_client: Client
) -> None:
    """Other features append changes in their own transactions; nodes react the same way."""
    node = await start_node(aiohttp_client, quiet(settings), clock)
    await report(node, "0912345678")
    assert (await (await node.get("/v1/numbers/0912345678")).json())["status"] == "reported"
    store = node_app(node)[STORE]
    async with store.pool.acquire() as conn, conn.transaction():
        await conn.execute("UPDATE numbers SET status = 'confirmed' WHERE e164 = '+84912345678'")
        await store.append_change(conn, "+84912345678", "status")

    async def confirmed() -> bool:
        body = await (await node.get("/v1/numbers/0912345678")).json()
        return bool(body["status"] == "confirmed")

    await eventually(confirmed)


async def test_dropped_listen_connections_lose_no_change(
    database_url: str, settings: Settings, clock: FakeClock, aiohttp_client: Client
) -> None:
    reporter = await start_node(aiohttp_client, quiet(settings), clock)
    follower = await start_node(aiohttp_client, quiet(settings), clock)
    await eventually(lambda: _listening(follower))
    admin = await asyncpg.connect(database_url)
    sent = numbers(40)

    async def report_all() -> None:
        for number in sent:
            await report(reporter, number)
            await asyncio.sleep(0.02)

    async def cut_listeners() -> int:
        cut = 0
        for _ in range(3):
            await asyncio.sleep(0.2)
            await eventually(lambda: _listening(follower))  # back since the previous cut
            cut += await terminate_listeners(admin)
        return cut

    try:
        _, cut = await asyncio.gather(report_all(), cut_listeners())
    finally:
        await admin.close()
    assert cut >= 3

    async def all_seen() -> bool:
        body = await (await follower.post("/v1/lookups", json={"numbers": sent})).json()
        return all(result["reports"] == 1 for result in body["results"])

    await eventually(all_seen)
    exposition = await (await follower.get("/metrics")).text()
    assert metric_value(exposition, "reputation_feed_reconnects_total") >= 3
    assert metric_value(exposition, "reputation_feed_changes_total") >= len(sent)


async def test_a_change_whose_notification_was_missed_is_read_after_reconnecting(
    database_url: str, settings: Settings, clock: FakeClock, aiohttp_client: Client
) -> None:
    """Only the reconnection can bring this change: no NOTIFY was sent and the timer is off."""
    follower = await start_node(aiohttp_client, quiet(settings), clock)
    await eventually(lambda: _listening_and_idle(follower))
    await commit_without_notification(node_app(follower)[STORE], "+84912345678")
    await asyncio.sleep(0.5)
    assert await reports_seen(follower, "0912345678") == 0
    admin = await asyncpg.connect(database_url)
    try:
        assert await terminate_listeners(admin) == 1
    finally:
        await admin.close()
    await eventually(lambda: _reports_are(follower, "0912345678", 1))
    exposition = await (await follower.get("/metrics")).text()
    assert metric_value(exposition, "reputation_feed_reconnects_total") == 1


async def test_a_change_whose_notification_was_missed_is_read_on_the_timer(
    settings: Settings, clock: FakeClock, aiohttp_client: Client
) -> None:
    follower = await start_node(
        aiohttp_client, dataclasses.replace(settings, feed_poll_interval=0.2), clock
    )
    await eventually(lambda: _listening_and_idle(follower))
    await commit_without_notification(node_app(follower)[STORE], "+84912345678")
    await eventually(lambda: _reports_are(follower, "0912345678", 1))
    exposition = await (await follower.get("/metrics")).text()
    assert metric_value(exposition, "reputation_feed_reconnects_total") == 0
    assert node_app(follower)[FEED].listening


async def commit_without_notification(store: Store, e164: str) -> None:
    """A reported number and its change row, committed with no NOTIFY: as if the
    notification had been sent while nobody listened."""
    async with store.pool.acquire() as conn, conn.transaction():
        await conn.execute("INSERT INTO numbers (e164, reports, reporters) VALUES ($1, 1, 1)", e164)
        await store.log_change(conn, e164, "report")


async def terminate_listeners(admin: asyncpg.Connection) -> int:
    """Terminate the LISTEN connections of every node on this database; how many there were."""
    terminated: int = await admin.fetchval(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name = $1",
        LISTEN_APPLICATION_NAME,
    )
    return terminated


async def test_a_node_whose_missing_changes_were_pruned_reloads(
    own_settings: Settings, clock: FakeClock, aiohttp_client: Client
) -> None:
    # Pruning waits for the oldest transaction running anywhere in the cluster:
    # on a server of its own, no foreign transaction holds it back.
    one = await start_node(aiohttp_client, quiet(own_settings), clock)
    behind = await start_node(aiohttp_client, quiet(own_settings), clock)
    behind_feed = node_app(behind)[FEED]
    await eventually(lambda: _listening(behind))
    await behind_feed.stop()  # the node stalls and drops out of the live nodes

    late = numbers(5, start=500)
    for number in late:
        await report(one, number)
    one_app = node_app(one)
    store, one_feed = one_app[STORE], one_app[FEED]
    await one_feed.read_once()
    assert one_feed.head is not None
    await store.register_feed_node(
        one_feed.node_id, socket.gethostname(), os.getpid(), one_feed.head
    )
    lookups = one_app[LOOKUPS]
    assert lookups.filter is not None
    await one_app[FILTERS]._save(lookups.filter, one_feed.head)
    assert await store.prune_changes(60.0, 86_400.0) >= len(late)

    loaded = "reputation_bloom_snapshots_loaded_total"
    before = metric_value(await (await behind.get("/metrics")).text(), loaded)
    assert await behind_feed.read_once() == 0  # reloaded instead of reading
    exposition = await (await behind.get("/metrics")).text()
    assert metric_value(exposition, "reputation_feed_reloads_total") == 1
    assert metric_value(exposition, loaded) == before + 1
    for number in late:
        assert await reports_seen(behind, number) == 1


async def test_a_node_behind_by_more_than_the_retention_no_longer_holds_pruning_back(
    own_database_url: str, settings: Settings
) -> None:
    # On a server of its own: no foreign transaction holds the pruning horizon back.
    async with create_pool(own_database_url, settings) as pool:
        store = Store(pool, b"key", utc_now)
        async with store.consistent_read() as read:
            behind = await read.head()
        async with pool.acquire() as conn, conn.transaction():
            for number in ("+84910000001", "+84910000002", "+84910000003"):
                await store.append_change(conn, number, "report")
        async with store.consistent_read() as read:
            current = await read.head()
        # Alive (it registers now), but the position it holds is two hours old.
        stale = dataclasses.replace(behind, taken_at=behind.taken_at - timedelta(hours=2))
        await store.register_feed_node("behind", "host-a", 1, stale)
        await store.register_feed_node("current", "host-b", 2, current)
        assert await store.prune_changes(60.0, 86_400.0) == 0  # within a day: waited for
        assert await store.prune_changes(60.0, 3_600.0) == 3  # beyond an hour: not


async def test_the_filter_is_rebuilt_on_its_schedule(
    settings: Settings, clock: FakeClock, aiohttp_client: Client
) -> None:
    node = await start_node(
        aiohttp_client, dataclasses.replace(settings, filter_rebuild_interval=1.0), clock
    )
    await report(node, "0912345678")
    lookups = node_app(node)[LOOKUPS]
    first = lookups.filter

    async def rebuilt() -> bool:
        exposition = await (await node.get("/metrics")).text()
        return metric_value(exposition, 'reputation_bloom_rebuilds_total{reason="scheduled"}') >= 1

    await eventually(rebuilt, seconds=15)
    assert lookups.filter is not first
    assert "+84912345678" in lookups.filter
    assert await reports_seen(node, "0912345678") == 1


async def test_truncated_tables_make_every_node_reload(
    database_url: str, settings: Settings, clock: FakeClock, aiohttp_client: Client
) -> None:
    node = await start_node(aiohttp_client, quiet(settings), clock)
    await report(node, "0912345678")
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("TRUNCATE numbers, changes CASCADE")
    finally:
        await conn.close()
    await node_app(node)[FEED].read_once()
    body = await (await node.get("/v1/numbers/0912345678")).json()
    assert body["reported"] is False
    exposition = await (await node.get("/metrics")).text()
    assert metric_value(exposition, "reputation_feed_reloads_total") == 1
    assert metric_value(exposition, "reputation_bloom_items") == 0


async def test_a_new_node_starts_from_the_stored_snapshot_and_its_tail(
    settings: Settings, clock: FakeClock, aiohttp_client: Client
) -> None:
    first = await start_node(aiohttp_client, settings, clock)  # builds and stores a snapshot
    await report(first, "0912345678")  # after the snapshot: in the tail
    second = await start_node(aiohttp_client, quiet(settings), clock)
    exposition = await (await second.get("/metrics")).text()
    assert metric_value(exposition, "reputation_bloom_snapshots_loaded_total") == 1
    assert metric_value(exposition, "reputation_bloom_items") == 1
    assert await reports_seen(second, "0912345678") == 1


async def test_a_full_filter_is_rebuilt_larger_while_lookups_go_on(
    settings: Settings, clock: FakeClock, aiohttp_client: Client
) -> None:
    node = await start_node(aiohttp_client, dataclasses.replace(settings, bloom_capacity=20), clock)
    reported = numbers(30, start=700)
    for number in reported:
        await report(node, number)

    async def rebuilt() -> bool:
        exposition = await (await node.get("/metrics")).text()
        return metric_value(exposition, 'reputation_bloom_rebuilds_total{reason="full"}') >= 1

    deadline = time.monotonic() + 10
    while not await rebuilt():
        # Every reported number stays reported through the rebuild.
        body = await (await node.post("/v1/lookups", json={"numbers": reported})).json()
        assert all(result["reported"] for result in body["results"])
        assert time.monotonic() < deadline, "no rebuild"
    exposition = await (await node.get("/metrics")).text()
    # Sized for twice the numbers known when the rebuild read them (more than 20).
    assert metric_value(exposition, "reputation_bloom_capacity") >= 40
    number_filter = node_app(node)[LOOKUPS].filter
    assert number_filter is not None
    assert all(f"+84{number[1:]}" in number_filter for number in reported)

    async def settled() -> bool:
        current = node_app(node)[LOOKUPS].filter
        return current is not None and not current.needs_rebuild

    await eventually(settled, seconds=10)

    async def stored_larger() -> bool:
        stored = await node_app(node)[STORE].newest_filter_snapshot()
        return stored is not None and stored.capacity >= 40

    await eventually(stored_larger)


async def _listening(client: TestClient) -> bool:
    return node_app(client)[FEED].listening


async def _listening_and_idle(client: TestClient) -> bool:
    """Listening, and the read that follows each (re)connection is done: no read is due."""
    feed = node_app(client)[FEED]
    return feed.listening and not feed._wake.is_set() and not feed._reading.locked()


async def _reports_are(client: TestClient, number: str, count: int) -> bool:
    return await reports_seen(client, number) == count


async def test_lookup_misses_are_read_from_the_replica(
    own_database_url: str, settings: Settings, clock: FakeClock, aiohttp_client: Client
) -> None:
    """With a replica configured, lookups the memory cannot answer read it, never the primary.

    The "replica" here is another database that replication never feeds, so
    what a lookup answers shows where it was read.
    """
    writer = await start_node(aiohttp_client, settings, clock)
    reader = await start_node(
        aiohttp_client, dataclasses.replace(settings, replica_url=own_database_url), clock
    )
    replica = await asyncpg.connect(own_database_url)
    try:
        await replica.execute(
            "INSERT INTO numbers (e164, reports, reporters) VALUES ('+84912345678', 7, 7)"
        )
    finally:
        await replica.close()
    await report(writer, "0912345678")  # the reader's filter learns it from the feed

    async def from_replica() -> bool:
        return await reports_seen(reader, "0912345678") == 7

    await eventually(from_replica)
    assert await reports_seen(writer, "0912345678") == 1


async def test_filters_built_from_many_numbers_hold_exactly_their_bits(
    settings: Settings, clock: FakeClock, aiohttp_client: Client
) -> None:
    """Start-up (blocks prepared in parallel) and a rebuild (one block at a time) read the
    table in many blocks: the filter is bit for bit the one that adding each number makes."""
    known = [f"+8498{i:07d}" for i in range(150_000)]  # about 1.8 MB of COPY text
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.copy_records_to_table("numbers", records=[(n,) for n in known], columns=["e164"])
        in_table_order = [row[0] for row in await conn.fetch("SELECT e164 FROM numbers")]
    finally:
        await conn.close()
    node = await start_node(aiohttp_client, settings, clock)
    lookups = node_app(node)[LOOKUPS]
    for build in ("start-up", "rebuild"):
        if build == "rebuild":
            await node_app(node)[FILTERS].rebuild("scheduled", lambda: None)
        built = lookups.filter
        assert built is not None
        expected = NumberFilter(built.capacity, built.error_rate)
        for number in in_table_order:
            expected.add(number)
        assert built.capacity >= 2 * len(known)
        assert built.bloom.bitarray == expected.bloom.bitarray, build
        assert len(built) == len(expected), build
