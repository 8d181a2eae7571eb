"""The change feed: keeps this node's memory in step with the change log in PostgreSQL.

``NOTIFY`` is only a wake-up. The node reads the change log when woken, on a
timer, and after every reconnection of its ``LISTEN`` connection, always from
the position it last applied (see ``changes.FeedPosition``), so a missed
notification, a dropped connection or an hour offline loses nothing. What to
do with a change is up to the subscribers (``subscribe``): the lookup state
adds the number to its Bloom filter and expires its cached answer; other
in-memory state registers its own handler the same way.

When the changes a node lacks are gone (pruned while it was away, or a
``TRUNCATE``), the node reloads: the ``reload`` function given to the feed
rebuilds the lookup state and says which position it holds, and the
``on_reload`` handlers refresh everything else.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

import asyncpg

from reputation.changes import Change
from reputation.constants import (
    FEED_BATCH_SIZE,
    FEED_HEARTBEAT_SECONDS,
    FEED_MIN_READ_INTERVAL,
    FEED_NODE_TIMEOUT_SECONDS,
    FEED_PRUNE_SECONDS,
    LISTEN_CHECK_SECONDS,
    NOTIFY_CHANNEL,
    RECONNECT_MAX_SECONDS,
    RECONNECT_MIN_SECONDS,
)
from reputation.health import UNAVAILABLE, DatabaseHealth
from reputation.metrics import FeedGauges, Metrics
from reputation.settings import Settings
from reputation.store import FeedHead, Store

logger = logging.getLogger(__name__)

# How the LISTEN connection shows in pg_stat_activity.
LISTEN_APPLICATION_NAME = "reputation change feed"

ChangeHandler = Callable[[Sequence[Change]], Awaitable[None] | None]
ReloadHandler = Callable[[], Awaitable[None] | None]


class HistoryLost(Exception):
    """Changes this node lacks are no longer in the change log: it must reload."""


class ChangeFeed:
    """One node's reader of the change log: position, subscribers, LISTEN, housekeeping."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        metrics: Metrics,
        health: DatabaseHealth,
        reload: Callable[[], Awaitable[FeedHead]],
    ) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.health = health
        self.reload = reload
        self.node_id = uuid.uuid4().hex
        self.head: FeedHead | None = None
        self.listening = False
        # Set once the position is known and the reload handlers ran: the node is ready.
        self.started = False
        self.last_read = 0.0
        self._handlers: list[ChangeHandler] = []
        self._reload_handlers: list[ReloadHandler] = []
        self._wake = asyncio.Event()
        self._reading = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        metrics.watch_feed(
            FeedGauges(
                listening=lambda: float(self.listening),
                seconds_since_read=lambda: (
                    time.monotonic() - self.last_read if self.last_read else 0.0
                ),
                database_up=lambda: float(self.health.up),
            )
        )

    def subscribe(self, handler: ChangeHandler) -> None:
        """Call ``handler`` with every batch of changes, in log order, before moving on."""
        self._handlers.append(handler)

    def on_reload(self, handler: ReloadHandler) -> None:
        """Call ``handler`` when the feed starts and after every reload: load your whole state.

        Changes committed after that are then given to the ``subscribe``
        handlers; a change may arrive that the load already saw, so handlers
        must be idempotent.
        """
        self._reload_handlers.append(handler)

    def wake(self) -> None:
        """Read the change log soon (a notification arrived, or a connection came back)."""
        self._wake.set()

    async def start(self, head: FeedHead) -> None:
        """Follow the change log from ``head`` (the position the lookup state was loaded at).

        The ``on_reload`` handlers run first: state other than the lookups'
        loads itself there, so that no change between its load and the
        feed's position can slip through.
        """
        self.head = head
        await self._run_reload_handlers()
        self.started = True
        self.wake()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._follow(), name="change feed reader"),
            loop.create_task(self._listen(), name="change feed listener"),
            loop.create_task(self._housekeeping(), name="change feed housekeeping"),
        ]

    async def stop(self) -> None:
        """Stop following; the node no longer holds back pruning."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self.health.up:
            try:
                async with asyncio.timeout(2):
                    await self.store.forget_feed_node(self.node_id)
            except (*UNAVAILABLE, asyncpg.PostgresError) as exc:
                # Pruning stops waiting for a silent node after a minute anyway.
                logger.info("node not unregistered from the change feed: %s", exc)

    async def catch_up(self) -> int:
        """Apply every change committed since the position; how many there were."""
        assert self.head is not None, "start() sets the position first"
        applied = 0
        async with self.store.consistent_read() as read:
            head = await read.head()
            if head.generation != self.head.generation:
                raise HistoryLost("rows were removed without passing through the change log")
            if head.pruned_below > self.head.position.xmin:
                raise HistoryLost("changes this node lacks were pruned")
            async for batch in read.changes_since(self.head.position, FEED_BATCH_SIZE):
                await self._apply(batch)
                applied += len(batch)
        self.head = head
        self.last_read = time.monotonic()
        return applied

    async def read_once(self) -> int:
        """``catch_up``, or reload first if the changes this node lacks are gone.

        One read at a time: two would apply the same changes, or reload twice.
        """
        async with self._reading:
            try:
                return await self.catch_up()
            except HistoryLost as lost:
                await self._reload(str(lost))
                return 0

    async def _apply(self, changes: Sequence[Change]) -> None:
        now = datetime.now(UTC)
        for change in changes:
            self.metrics.feed_delay.observe(max(0.0, (now - change.changed_at).total_seconds()))
        for handler in self._handlers:
            try:
                outcome = handler(changes)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                # One broken subscriber must not stop the others or the feed.
                logger.exception("a change subscriber failed; its state may be stale")
                self.metrics.feed_subscriber_errors.inc()
        self.metrics.feed_changes.inc(len(changes))

    async def _reload(self, reason: str) -> None:
        logger.warning("reloading the node's state from PostgreSQL: %s", reason)
        self.metrics.feed_reloads.inc()
        self.head = await self.reload()
        await self._run_reload_handlers()
        await self.catch_up()

    async def _run_reload_handlers(self) -> None:
        for handler in self._reload_handlers:
            try:
                outcome = handler()
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                logger.exception("a reload handler failed")
                self.metrics.feed_subscriber_errors.inc()

    async def _follow(self) -> None:
        """Read when woken or when the timer runs out; back off while PostgreSQL is down."""
        delay = RECONNECT_MIN_SECONDS
        while True:
            try:
                async with asyncio.timeout(self.settings.feed_poll_interval):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.read_once()
                self.health.succeeded()
                delay = RECONNECT_MIN_SECONDS
                # Notifications that arrive meanwhile are served by the next read.
                await asyncio.sleep(FEED_MIN_READ_INTERVAL)
            except UNAVAILABLE as exc:
                self.health.failed()
                logger.warning("cannot read the change log (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)
            except Exception:
                logger.exception("reading the change log failed; retrying")
                await asyncio.sleep(RECONNECT_MAX_SECONDS)

    async def _listen(self) -> None:
        """Keep a LISTEN connection open; every (re)connection triggers a read."""
        assert self.settings.database_url is not None
        delay = RECONNECT_MIN_SECONDS
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(
                    self.settings.database_url,
                    timeout=LISTEN_CHECK_SECONDS,
                    server_settings={"application_name": LISTEN_APPLICATION_NAME},
                )
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await conn.add_listener(NOTIFY_CHANNEL, lambda *_args: self.wake())
                self.listening = True
                # Whatever was committed while nobody listened is read now.
                self.wake()
                delay = RECONNECT_MIN_SECONDS
                while not lost.is_set():
                    try:
                        async with asyncio.timeout(LISTEN_CHECK_SECONDS):
                            await lost.wait()
                    except TimeoutError:
                        await conn.fetchval(self.store.sql["ping"], timeout=LISTEN_CHECK_SECONDS)
                logger.warning("the LISTEN connection was closed; reconnecting")
            except (*UNAVAILABLE, asyncpg.PostgresError) as exc:
                logger.warning("LISTEN connection failed (%s); retrying in %.1f s", exc, delay)
            except Exception:
                logger.exception("LISTEN connection failed; retrying in %.1f s", delay)
            finally:
                self.listening = False
                if conn is not None:
                    conn.terminate()
            self.metrics.feed_reconnects.inc()
            self.wake()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)

    async def _housekeeping(self) -> None:
        """Record this node's position for pruning; prune what every live node holds."""
        host, pid = socket.gethostname(), os.getpid()
        next_prune = time.monotonic()
        while True:
            try:
                if self.head is not None:
                    await self.store.register_feed_node(self.node_id, host, pid, self.head)
                if time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + FEED_PRUNE_SECONDS
                    pruned = await self.store.prune_changes(
                        FEED_NODE_TIMEOUT_SECONDS, self.settings.feed_retention
                    )
                    self.metrics.feed_pruned.inc(pruned)
            except UNAVAILABLE as exc:
                logger.debug("feed housekeeping skipped: %s", exc)
            except Exception:
                logger.exception("feed housekeeping failed")
            await asyncio.sleep(FEED_HEARTBEAT_SECONDS)
