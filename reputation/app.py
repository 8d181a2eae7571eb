"""The application factory and the lifecycle of everything a node owns."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiohttp import web

from reputation import api, intake, sms_intake, statuspage
from reputation.appkeys import (
    CLOCK,
    EXPORT_SLOTS,
    FEED,
    FILTERS,
    GUARD,
    HEALTH,
    LOOKUPS,
    METRICS,
    RANGES,
    SETTINGS,
    SPOOL,
    STORE,
    SWEEPER,
    WORKER_LINK,
)
from reputation.auth import Guard, is_loopback
from reputation.constants import (
    LINGER_SECONDS,
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    MAX_HEADERS,
    MAX_REQUEST_LINE_BYTES,
    SPOOL_REPLAY_SECONDS,
)
from reputation.exposition import METRICS_QUESTION, families_data
from reputation.feed import ChangeFeed
from reputation.filters import FilterKeeper
from reputation.health import DatabaseHealth
from reputation.logs import ACCESS_LOGGERS, install_request_text_filter
from reputation.lookup import Answer, Lookups
from reputation.metrics import Metrics
from reputation.migrate import migrate
from reputation.ranges import RangeKeeper
from reputation.records import NumberRecord
from reputation.settings import Settings
from reputation.siblings import ONLY_WORKER, WorkerLink, WorkerSlot
from reputation.spool import Spool
from reputation.store import Store, create_pool
from reputation.sweeper import Sweeper

logger = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utc_now,
    worker: WorkerSlot = ONLY_WORKER,
) -> web.Application:
    """A node of the service for ``settings.database_url`` (which must be set).

    ``worker`` says which of the node's worker processes this app is (the
    first and only one unless ``reputation serve`` runs several).
    """
    if not settings.database_url:
        raise ValueError("create_app needs settings.database_url; `reputation serve` sets it")
    check_auth_setting(settings)
    install_request_text_filter()
    metrics = Metrics()
    # Alerts compare the filter's estimated false-positive rate with its design.
    metrics.bloom_design_error_rate.set(settings.bloom_error_rate)
    guard = Guard(settings, metrics)
    app = web.Application(
        middlewares=[api.front_middleware(guard)],
        client_max_size=MAX_BODY_BYTES,
        handler_args={
            # A connection idle, or still sending its request headers, is closed
            # after this (aiohttp's keep-alive timer also runs while headers arrive).
            "keepalive_timeout": settings.idle_timeout,
            "max_line_size": MAX_REQUEST_LINE_BYTES,
            "max_field_size": MAX_HEADER_BYTES,
            "max_headers": MAX_HEADERS,
            "lingering_time": LINGER_SECONDS,
            # Compressed request bodies are not unpacked: JSON this small gains
            # nothing from it, and a small zip bomb would cost us the inflating.
            "auto_decompress": False,
            # However the app is served (tests too): access lines name the route,
            # never the path, which may hold a phone number.
            **access_log_class(settings),
        },
    )
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[METRICS] = metrics
    app[GUARD] = guard
    app[HEALTH] = DatabaseHealth()
    app[EXPORT_SLOTS] = asyncio.Semaphore(max(1, settings.export_concurrency))
    app[WORKER_LINK] = link = WorkerLink(settings, worker)
    link.answer(METRICS_QUESTION, lambda: families_data(metrics.registry))
    api.setup_routes(app)
    app.cleanup_ctx.append(database)
    app.cleanup_ctx.append(api_keys)
    app.cleanup_ctx.append(lookup_state)
    app.cleanup_ctx.append(report_spool)
    app.cleanup_ctx.append(verdict_sweep)
    app.cleanup_ctx.append(statuspage.activity_sampler)
    app.cleanup_ctx.append(range_state)
    # Last: siblings are answered once everything they may ask about exists.
    app.cleanup_ctx.append(sibling_socket)
    return app


def access_log_class(settings: Settings) -> dict[str, Any]:
    chosen = ACCESS_LOGGERS[settings.access_log]
    return {"access_log_class": chosen} if chosen is not None else {}


def check_auth_setting(settings: Settings) -> None:
    """Authentication may be off only on a loopback address, and never silently."""
    if settings.auth:
        return
    if not is_loopback(settings.host):
        raise ValueError(
            f"authentication can be off (REPUTATION_AUTH=off, --no-auth) only when listening "
            f"on a loopback address, not on {settings.host!r}; create API keys with "
            "`reputation keys create` instead"
        )
    logger.warning(
        "AUTHENTICATION IS OFF: no API key is checked; anyone who can reach %s may look up, "
        "report and change anything. Never run like this on a shared or public network.",
        settings.host,
    )


async def database(app: web.Application) -> AsyncIterator[None]:
    """The connection pools (the primary's; a replica's for lookups, if set), schema migrated."""
    settings = app[SETTINGS]
    assert settings.database_url is not None
    async with contextlib.AsyncExitStack() as stack:
        pool = await stack.enter_async_context(create_pool(settings.database_url, settings))
        async with pool.acquire() as conn:
            await migrate(conn)
        key = await Store.load_reporter_key(pool, settings.reporter_key)
        store = Store(pool, key, app[CLOCK], settings)
        if settings.replica_url:
            store.lookup_pool = await stack.enter_async_context(
                create_pool(settings.replica_url, settings)
            )
        app[STORE] = store
        yield


async def api_keys(app: web.Application) -> AsyncIterator[None]:
    """The active API keys in memory, re-read on each change (NOTIFY) and on a timer."""
    settings, guard = app[SETTINGS], app[GUARD]
    if not settings.auth:
        yield
        return
    assert settings.database_url is not None
    await guard.ring.reload(app[STORE])
    logger.info("API keys loaded: %d active", len(guard.ring))
    if not guard.ring:
        logger.warning(
            "no API key exists yet: every protected call will get 401; create one with "
            "`reputation keys create --role admin --name NAME`"
        )
    if not guard.gateway_secrets:
        logger.warning("REPUTATION_SMS_GATEWAY_SECRET is unset: the SMS webhook refuses calls")
    watching = asyncio.get_running_loop().create_task(
        guard.ring.watch(app[STORE], settings.database_url, settings.key_refresh_interval)
    )
    yield
    watching.cancel()
    await asyncio.gather(watching, return_exceptions=True)


async def lookup_state(app: web.Application) -> AsyncIterator[None]:
    """The Bloom filter, hot cache and change feed, started in the background.

    The node answers lookups from Postgres until its filter is loaded, then
    from memory; the change feed keeps filter and cache in step with the
    other nodes.
    """
    settings, store, metrics = app[SETTINGS], app[STORE], app[METRICS]
    lookups = Lookups(settings, store, metrics, app[CLOCK], app[HEALTH])
    keeper = FilterKeeper(lookups, store)
    feed = ChangeFeed(store, settings, metrics, app[HEALTH], reload=keeper.load)
    feed.subscribe(lookups.apply_changes)
    feed.subscribe(lookups.apply_protected_changes)
    feed.on_reload(lookups.reload_protected)
    app[LOOKUPS], app[FILTERS], app[FEED] = lookups, keeper, feed
    running = asyncio.get_running_loop().create_task(_run_node(keeper, feed))
    yield
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    await feed.stop()


async def _run_node(keeper: FilterKeeper, feed: ChangeFeed) -> None:
    head = await keeper.load_with_retry()
    try:
        await keeper.warm_cache()
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        logger.warning("hot cache not warmed: %s", exc)
    await feed.start(head)
    await keeper.run(lambda: feed.head)


async def report_spool(app: web.Application) -> AsyncIterator[None]:
    """The local spool of reports taken while PostgreSQL is down, replayed when it is back.

    At shutdown the spool is flushed: replayed if PostgreSQL answers, else
    left on disk for the next process of this data directory.
    """
    settings, health = app[SETTINGS], app[HEALTH]
    spool = Spool(settings.data_dir / "spool", settings.spool_max_bytes, app[METRICS])
    spool.register(intake.REPORT_KIND, functools.partial(intake.replay_report, app))
    spool.register(sms_intake.SMS_KIND, functools.partial(sms_intake.replay_sms, app))
    await spool.open()
    app[SPOOL] = spool
    replaying = asyncio.get_running_loop().create_task(_replay_when_up(spool, health))
    yield
    replaying.cancel()
    await asyncio.gather(replaying, return_exceptions=True)
    if spool.pending and health.up:
        try:
            async with asyncio.timeout(settings.shutdown_timeout):
                await spool.replay()
        except TimeoutError:
            logger.warning("spool not fully replayed before shutdown; kept on disk")
    if spool.pending:
        logger.warning(
            "%d spooled records kept in %s for the next start", len(spool.pending), spool.path
        )
    await spool.close()


async def _replay_when_up(spool: Spool, health: DatabaseHealth) -> None:
    while True:
        await asyncio.sleep(SPOOL_REPLAY_SECONDS)
        if spool.pending and health.up:
            try:
                await spool.replay()
            except Exception:
                logger.exception("spool replay failed; retrying")


async def verdict_sweep(app: web.Application) -> AsyncIterator[None]:
    """The periodic sweep that stores verdicts changed by time (see ``sweeper.py``)."""
    sweeper = Sweeper(app[STORE], app[LOOKUPS], app[METRICS], app[SETTINGS].verdict_sweep_interval)
    app[SWEEPER] = sweeper
    task = asyncio.get_running_loop().create_task(sweeper.run())
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def sibling_socket(app: web.Application) -> AsyncIterator[None]:
    """This worker's socket, on which its siblings ask for its metrics and activity."""
    async with app[WORKER_LINK].listening():
        yield


async def range_state(app: web.Application) -> AsyncIterator[None]:
    """The hash-prefix index behind /v1/ranges, loaded in the background (lookups don't wait)."""
    lookups, settings = app[LOOKUPS], app[SETTINGS]

    def verdict_of(record: NumberRecord) -> str:
        return lookups.judge(Answer(record.e164, record, "database")).verdict

    keeper = RangeKeeper(app[STORE], verdict_of, settings.ranges_refresh_interval)
    app[RANGES] = keeper
    if not settings.ranges_index:
        yield
        return
    lookups.listeners.append(keeper.remember)
    # Any change in the log may have moved a published entry: read them soon.
    app[FEED].subscribe(lambda changes: keeper.wake())
    app[METRICS].range_index_entries.set_function(lambda: len(keeper.index) if keeper.index else 0)
    following = asyncio.get_running_loop().create_task(keeper.run())
    yield
    following.cancel()
    await asyncio.gather(following, return_exceptions=True)
