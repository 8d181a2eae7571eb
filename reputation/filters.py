"""Where a node's Bloom filter comes from, and when it is replaced.

A new node loads the newest stored snapshot of the filter (a few megabytes of
bits kept in PostgreSQL with the feed position they hold) and replays only
the change log after it; without a usable snapshot it builds the filter from
the ``numbers`` table (read with ``COPY``) and stores a snapshot for the next
node. A Bloom filter cannot forget and fills up as numbers are added, so it
is rebuilt in the background when it passes its design capacity and on a
schedule, then swapped in at once: lookups never wait for a build.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg

from reputation.bloom import GROWTH_FACTOR, HASHING, BitPositions, NumberFilter
from reputation.constants import MAX_WARM_NUMBERS
from reputation.health import UNAVAILABLE
from reputation.lookup import Lookups
from reputation.store import ConsistentRead, FeedHead, Store, StoredFilter

logger = logging.getLogger(__name__)

# COPY text gathered before it is handed to the thread that adds it to a filter
# being built (about 37,000 numbers): large enough that each hand-over's fixed
# costs vanish, small enough that splitting it into lines (done holding the
# interpreter lock) takes about a millisecond.
BUILD_BLOCK_BYTES = 1 << 19
# Blocks being prepared or added at once by a node not yet ready: enough to
# keep every core busy (10M numbers: 16 s instead of 25 s on a loaded
# machine). A rebuild beside live lookups takes one block at a time.
BUILD_BLOCKS_AHEAD = 4
# pg_advisory_lock key held while a node builds a filter from the tables at
# start-up ("bloom" as a number).
FILTER_BUILD_LOCK_KEY = 0x626C6F6F6D
# How often the keeper checks whether the filter is full or a rebuild is due.
CHECK_SECONDS = 1.0
# Scheduled rebuilds and snapshots are spread by up to this share of their
# interval, so that the nodes of a deployment do not all work at once.
JITTER = 0.1


class FilterKeeper:
    """Loads, rebuilds and stores this node's Bloom filter."""

    def __init__(self, lookups: Lookups, store: Store) -> None:
        self.lookups = lookups
        self.store = store
        self.settings = lookups.settings
        self.metrics = lookups.metrics
        # One build at a time: a reload and a rebuild must not swap in each other's filter.
        self._building = asyncio.Lock()
        self._next_rebuild = self._after(self.settings.filter_rebuild_interval)
        self._next_snapshot = self._after(self.settings.filter_snapshot_interval)

    @staticmethod
    def _after(interval: float) -> float:
        if interval <= 0:
            return float("inf")
        return time.monotonic() + interval * (1 + random.uniform(-JITTER, JITTER))

    async def load(self) -> FeedHead:
        """Give the lookups a complete filter; the feed position it holds.

        Used at start-up and when the node must reload. The cache is emptied:
        its answers may predate changes this node never saw.
        """
        async with self._building:
            started = time.perf_counter()
            with self.lookups.recording() as added:
                loaded = await self._from_snapshot()
                if loaded is not None:
                    source = "snapshot"
                    number_filter, head = await self._caught_up(*loaded)
                else:
                    # Nodes starting together: one builds and stores, the others
                    # wait for its snapshot instead of building too.
                    async with self.store.advisory_lock(FILTER_BUILD_LOCK_KEY):
                        loaded = await self._from_snapshot()
                        source = "numbers" if loaded is None else "snapshot"
                        number_filter, head = await self._caught_up(*loaded or (None, None))
                        if source == "numbers":
                            await self._save(number_filter, head)
                self.lookups.cache.clear()
                self.lookups.forget_own_changes()
                self.lookups.install(number_filter, added)
            logger.info(
                "Bloom filter loaded from %s: %d numbers, capacity %d, in %.2f s",
                source,
                len(number_filter),
                number_filter.capacity,
                time.perf_counter() - started,
            )
            return head

    async def _caught_up(
        self, number_filter: NumberFilter | None, start: FeedHead | None
    ) -> tuple[NumberFilter, FeedHead]:
        """A filter (built from the tables if none is given) with the change log after it added."""
        while True:
            if number_filter is None or start is None:
                number_filter, start = await self._from_numbers()
            head = await self._replay_tail(number_filter, start)
            if head is not None:
                return number_filter, head
            number_filter = None  # the history was reset meanwhile: the tables are the truth

    async def load_with_retry(self, max_delay: float = 10.0) -> FeedHead:
        """``load``, tried again with growing pauses while Postgres cannot be read."""
        delay = 0.25
        while True:
            try:
                return await self.load()
            except (*UNAVAILABLE, asyncpg.PostgresError) as exc:
                logger.warning(
                    "cannot load the Bloom filter yet (%s); retrying in %.1f s", exc, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, max_delay)

    async def warm_cache(self) -> None:
        """Fill the cache with the answers most likely to be asked for."""
        limit = min(self.settings.cache_size, MAX_WARM_NUMBERS)
        for record in await self.store.most_reported(limit):
            self.lookups.cache.put(record.e164, record)

    async def rebuild(self, reason: str, position: Callable[[], FeedHead | None]) -> None:
        """Build a fresh filter from the tables and swap it in; the feed goes on untouched.

        Every number the node adds meanwhile (from the feed or its own reports)
        is added to the new filter before the swap, so nothing is lost.
        """
        async with self._building:
            started = time.perf_counter()
            with self.lookups.recording() as added:
                number_filter, _ = await self._from_numbers()
                self.lookups.install(number_filter, added)
            self.metrics.filter_rebuilds.labels(reason).inc()
            logger.info(
                "Bloom filter rebuilt (%s): %d numbers, capacity %d, in %.2f s",
                reason,
                len(number_filter),
                number_filter.capacity,
                time.perf_counter() - started,
            )
        head = position()
        if head is not None:
            await self._save(number_filter, head)

    async def run(self, position: Callable[[], FeedHead | None]) -> None:
        """Rebuild when the filter is full or the schedule says so; store snapshots."""
        while True:
            await asyncio.sleep(CHECK_SECONDS)
            number_filter = self.lookups.filter
            if number_filter is None:
                continue
            now = time.monotonic()
            try:
                if number_filter.needs_rebuild:
                    await self.rebuild("full", position)
                elif now >= self._next_rebuild:
                    self._next_rebuild = self._after(self.settings.filter_rebuild_interval)
                    await self.rebuild("scheduled", position)
                elif now >= self._next_snapshot:
                    self._next_snapshot = self._after(self.settings.filter_snapshot_interval)
                    await self._save_if_stale(position())
            except (*UNAVAILABLE, asyncpg.PostgresError) as exc:
                logger.warning("Bloom filter upkeep postponed: %s", exc)
            except Exception:
                logger.exception("Bloom filter upkeep failed; the overflow set keeps answers exact")

    async def _from_snapshot(self) -> tuple[NumberFilter, FeedHead] | None:
        """The newest stored filter, if this node can use it."""
        stored = await self.store.newest_filter_snapshot()
        if stored is None or not self._usable(stored):
            return None
        async with self.store.consistent_read() as read:
            head = await read.head()
        if stored.generation != head.generation or stored.position.xmin < head.pruned_below:
            return None  # changes after it are gone: build from the tables
        bits = await self.store.filter_snapshot_bits(stored.id)
        if bits is None:
            return None  # replaced meanwhile
        number_filter = NumberFilter.restore(stored.capacity, stored.error_rate, stored.items, bits)
        self.metrics.filter_snapshots_loaded.inc()
        return number_filter, FeedHead(
            stored.position, stored.created_at, head.pruned_below, stored.generation
        )

    def _usable(self, stored: StoredFilter) -> bool:
        """Same hashing and error rate, at least this node's capacity, and not full."""
        return (
            stored.hashing == HASHING
            and stored.error_rate == self.settings.bloom_error_rate
            and stored.capacity >= self.settings.bloom_capacity
            and stored.items < stored.capacity
        )

    async def _from_numbers(self) -> tuple[NumberFilter, FeedHead]:
        """A filter holding every known number, sized with room to grow, and its position."""
        count = await self.store.count_numbers()
        capacity = max(self.settings.bloom_capacity, count * GROWTH_FACTOR)
        number_filter = NumberFilter(capacity, self.settings.bloom_error_rate)
        async with self.store.consistent_read() as read:
            head = await read.head()
            # Before the node has a filter it takes no traffic (not ready): then
            # the build may use every core, and later only one thread at a time,
            # which keeps the event loop's waits for the interpreter lock short.
            blocks_ahead = BUILD_BLOCKS_AHEAD if self.lookups.filter is None else 1
            await copy_numbers_into(read, number_filter, blocks_ahead)
        return number_filter, head

    async def _replay_tail(self, number_filter: NumberFilter, start: FeedHead) -> FeedHead | None:
        """Add the numbers changed after ``start``; the position reached, or ``None`` if the
        changes after ``start`` are gone."""
        async with self.store.consistent_read() as read:
            head = await read.head()
            if head.generation != start.generation or head.pruned_below > start.position.xmin:
                return None
            async for batch in read.changes_since(start.position):
                for change in batch:
                    if change.is_about_a_number:
                        number_filter.add(change.e164)
                await asyncio.sleep(0)
            return head

    async def _save_if_stale(self, head: FeedHead | None) -> None:
        """Store the live filter unless another node stored a recent one."""
        if head is None or self.lookups.filter is None:
            return
        newest = await self.store.newest_filter_snapshot()
        interval = self.settings.filter_snapshot_interval
        if newest is not None:
            age = (datetime.now(UTC) - newest.created_at).total_seconds()
            if age < interval:
                return
        await self._save(self.lookups.filter, head)

    async def _save(self, number_filter: NumberFilter, head: FeedHead) -> None:
        """Store ``number_filter`` as holding ``head``'s position (bits copied right now)."""
        if number_filter.needs_rebuild:
            return  # a larger one is on its way
        bits = number_filter.to_bytes()
        stored = StoredFilter(
            id=0,
            created_at=datetime.now(UTC),
            generation=head.generation,
            position=head.position,
            hashing=HASHING,
            capacity=number_filter.capacity,
            error_rate=number_filter.error_rate,
            num_slices=number_filter.num_slices,
            bits_per_slice=number_filter.bits_per_slice,
            items=len(number_filter),
            size=len(bits),
        )
        try:
            await self.store.save_filter_snapshot(stored, bits)
            self.metrics.filter_snapshots_saved.inc()
        except (*UNAVAILABLE, asyncpg.PostgresError) as exc:
            logger.warning("Bloom filter snapshot not stored: %s", exc)


async def copy_numbers_into(
    read: ConsistentRead, number_filter: NumberFilter, blocks_ahead: int
) -> None:
    """Stream every known number into ``number_filter`` without holding up lookups.

    The COPY text is cut into blocks of whole lines. Worker threads work out
    the bit positions of up to ``blocks_ahead`` blocks at once
    (``NumberFilter.prepare``) while one more adds the blocks already
    prepared, in the order read (``add_prepared``). The event loop goes on
    reading and answering meanwhile: the threads give the interpreter lock
    back every few milliseconds.
    """
    pending: list[bytes] = []
    size = 0
    adding: deque[asyncio.Future[None]] = deque()

    async def hand_over(block: bytes) -> None:
        while len(adding) >= blocks_ahead:
            await adding.popleft()
        prepared = asyncio.ensure_future(asyncio.to_thread(_prepare_lines, number_filter, block))
        after = adding[-1] if adding else None
        adding.append(asyncio.ensure_future(_add_in_turn(number_filter, prepared, after)))

    async def take(chunk: bytes) -> None:
        nonlocal size
        pending.append(chunk)
        size += len(chunk)
        if size >= BUILD_BLOCK_BYTES:
            text = b"".join(pending)
            cut = text.rfind(b"\n") + 1
            pending[:] = [text[cut:]]
            size = len(pending[0])
            await hand_over(text[:cut])

    try:
        await read.copy_number_keys(take)
        await hand_over(b"".join(pending))
        while adding:
            await adding.popleft()
    except BaseException:
        # The filter is thrown away: threads still running finish unheard, and
        # the failures of blocks that already failed are the same failure.
        for task in adding:
            if task.done() and not task.cancelled():
                task.exception()
            task.cancel()
        raise


def _prepare_lines(
    number_filter: NumberFilter, text: bytes
) -> tuple[list[bytes], list[BitPositions]]:
    """The numbers of some COPY text (one per line) and their bit positions: a thread's part."""
    keys = text.split(b"\n")
    if keys[-1] == b"":
        keys.pop()
    return keys, number_filter.prepare(keys)


async def _add_in_turn(
    number_filter: NumberFilter,
    prepared: asyncio.Future[tuple[list[bytes], list[BitPositions]]],
    after: asyncio.Future[None] | None,
) -> None:
    """Add a prepared block once the block before it is in (in a thread: it sets many bits)."""
    try:
        keys, positions = await prepared
        if after is not None:
            await after
    except BaseException:
        prepared.cancel()
        raise
    await asyncio.to_thread(number_filter.add_prepared, keys, positions)
