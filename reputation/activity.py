"""Lookups per minute, by verdict, for the status page: each worker's, then the node's.

Each worker reads its own Prometheus counters at a fixed interval, so the hot
path counts nothing twice: the page shows the differences between readings,
grouped by minute. Only the last ``ACTIVITY_MINUTES`` are kept. The worker
that serves the page adds its siblings' minutes and readings (``WorkerActivity``,
asked over their sockets) into the node's (``NodeActivity``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from reputation.metrics import LAYERS, VERDICTS, Metrics
from reputation.store import FeedNode

# Minutes of history on the status page.
ACTIVITY_MINUTES = 60
# Seconds between two readings of the counters.
SAMPLE_SECONDS = 10.0
# Seconds the database figures are reused before the page asks again.
DATABASE_FIGURES_TTL = 10.0


@dataclass(frozen=True, slots=True)
class Reading:
    """Lookups answered since the node started, by verdict, at one moment."""

    at: datetime
    lookups: dict[str, float]


@dataclass(frozen=True, slots=True)
class Minute:
    start: datetime
    lookups: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.lookups.values())


def minute_of(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


class Activity:
    """Readings of the lookup counters, turned into lookups per minute."""

    def __init__(self, metrics: Metrics, clock: Callable[[], datetime]) -> None:
        self.metrics = metrics
        self.clock = clock
        self.started = clock()
        self.readings: deque[Reading] = deque()
        self.readings.append(Reading(self.started, {verdict: 0.0 for verdict in VERDICTS}))

    def read(self) -> Reading:
        registry = self.metrics.registry
        totals = {
            verdict: sum(
                registry.get_sample_value(
                    "reputation_lookups_total", {"layer": layer, "verdict": verdict}
                )
                or 0.0
                for layer in LAYERS
            )
            for verdict in VERDICTS
        }
        return Reading(self.clock(), totals)

    def sample(self) -> None:
        """Take a reading; forget those older than the window."""
        self.readings.append(self.read())
        horizon = self.readings[-1].at - timedelta(minutes=ACTIVITY_MINUTES + 1)
        while len(self.readings) > 2 and self.readings[1].at < horizon:
            self.readings.popleft()

    def per_minute(self) -> list[Minute]:
        """Lookups by verdict in each of the last minutes, oldest first, this one last.

        The lookups between two readings count in the minute of the later one.
        """
        now = self.read()
        last = minute_of(now.at)
        minutes = [last - timedelta(minutes=i) for i in range(ACTIVITY_MINUTES - 1, -1, -1)]
        counts = {start: dict.fromkeys(VERDICTS, 0.0) for start in minutes}
        readings = [*self.readings, now]
        for before, after in itertools.pairwise(readings):
            bucket = counts.get(minute_of(after.at))
            if bucket is None:
                continue
            for verdict in VERDICTS:
                bucket[verdict] += max(0.0, after.lookups[verdict] - before.lookups[verdict])
        return [Minute(start, counts[start]) for start in minutes]

    def since_start(self) -> dict[str, float]:
        """Lookups by verdict since the node started."""
        return self.read().lookups


@dataclass(frozen=True)
class DatabaseFigures:
    """What the status page reads from PostgreSQL (the same on every node)."""

    up: bool
    reports_per_minute: dict[datetime, int]
    top: list[tuple[str, int, int, str]]  # number, reports, reporters, verdict
    nodes: list[FeedNode]


class StatusState:
    """The status page's state on one node: lookup activity, database figures reused briefly."""

    def __init__(self, activity: Activity) -> None:
        self.activity = activity
        self.started = time.monotonic()
        self._figures: DatabaseFigures | None = None
        self._figures_at = 0.0
        self._lock = asyncio.Lock()

    async def figures(self, read: Callable[[], Awaitable[DatabaseFigures]]) -> DatabaseFigures:
        """The database figures, read at most once per ``DATABASE_FIGURES_TTL`` seconds."""
        async with self._lock:
            if self._figures is None or time.monotonic() - self._figures_at > DATABASE_FIGURES_TTL:
                self._figures = await read()
                self._figures_at = time.monotonic()
            return self._figures


@dataclass(frozen=True)
class FilterFigures:
    """A worker's Bloom filter, as the status page shows it."""

    items: int
    capacity: int
    fill_ratio: float
    false_positive_rate: float


@dataclass(frozen=True)
class WorkerActivity:
    """What one worker tells the status page: its lookups per minute and its memory."""

    minutes: list[Minute]
    since_start: dict[str, float]
    up_seconds: float
    filter: FilterFigures | None
    cache_entries: int
    cache_hits: int
    cache_misses: int

    def to_json(self) -> dict[str, Any]:
        return {
            "minutes": [[m.start.isoformat(), m.lookups] for m in self.minutes],
            "since_start": self.since_start,
            "up_seconds": self.up_seconds,
            "filter": None if self.filter is None else dataclasses.asdict(self.filter),
            "cache": [self.cache_entries, self.cache_hits, self.cache_misses],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorkerActivity:
        entries, hits, misses = data["cache"]
        return cls(
            minutes=[
                Minute(datetime.fromisoformat(start), {v: float(n) for v, n in lookups.items()})
                for start, lookups in data["minutes"]
            ],
            since_start={v: float(n) for v, n in data["since_start"].items()},
            up_seconds=float(data["up_seconds"]),
            filter=None if data["filter"] is None else FilterFigures(**data["filter"]),
            cache_entries=int(entries),
            cache_hits=int(hits),
            cache_misses=int(misses),
        )


@dataclass(frozen=True)
class NodeActivity:
    """The node's figures: every worker that answered, added up."""

    workers: list[WorkerActivity]  # this worker's first
    worker_count: int

    def per_minute(self) -> list[Minute]:
        """Lookups by verdict per minute over every worker, in this worker's last hour."""
        frame = self.workers[0].minutes
        counts = {m.start: dict.fromkeys(VERDICTS, 0.0) for m in frame}
        for worker in self.workers:
            for minute in worker.minutes:
                bucket = counts.get(minute.start)
                if bucket is not None:
                    for verdict in VERDICTS:
                        bucket[verdict] += minute.lookups.get(verdict, 0.0)
        return [Minute(m.start, counts[m.start]) for m in frame]

    def since_start(self) -> dict[str, float]:
        """Lookups by verdict since each worker started, over every worker."""
        return {v: sum(w.since_start.get(v, 0.0) for w in self.workers) for v in VERDICTS}

    @property
    def up_seconds(self) -> float:
        return max(w.up_seconds for w in self.workers)

    @property
    def filter(self) -> FilterFigures | None:
        """This worker's filter (every worker follows the same change feed), if loaded."""
        return self.workers[0].filter

    @property
    def filters_loaded(self) -> int:
        return sum(1 for w in self.workers if w.filter is not None)

    @property
    def cache_entries(self) -> int:
        return sum(w.cache_entries for w in self.workers)

    @property
    def cache_hit_ratio(self) -> float | None:
        hits = sum(w.cache_hits for w in self.workers)
        asked = hits + sum(w.cache_misses for w in self.workers)
        return hits / asked if asked else None
