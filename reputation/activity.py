"""This node's lookups per minute, by verdict, for the status page.

Read from the node's own Prometheus counters at a fixed interval, so the hot
path counts nothing twice: the page shows the differences between readings,
grouped by minute. Only the last ``ACTIVITY_MINUTES`` are kept.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

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
