"""The periodic sweep that keeps stored verdicts true as time passes.

A lookup judges its number afresh from the aggregate, so decay shows at once
in answers. The verdict *stored* in each row (what exports and other nodes
read) changes only when something writes it: reports and analyst decisions
do, and this sweep does for time. Each row keeps ``verdict_changes_at``, the
moment decay will lower its verdict, and the sweep reads only the rows that
are due, through an index, and appends a change-log row (``decay``) for each
verdict that moved. After the verdict settings change, the first sweep
re-judges every number once (``policy`` change rows).

The sweep also re-reads the protected numbers (a small table) and the count
of open appeals, so each node converges even if a change notice was missed.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from reputation.constants import SWEEP_BATCH
from reputation.lookup import Lookups
from reputation.metrics import Metrics
from reputation.store import Store

logger = logging.getLogger(__name__)


class Sweeper:
    """Runs the sweep now (``run_once``) or every ``interval`` seconds (``run``)."""

    def __init__(self, store: Store, lookups: Lookups, metrics: Metrics, interval: float) -> None:
        self.store = store
        self.lookups = lookups
        self.metrics = metrics
        self.interval = interval
        self.policy_checked = False
        # One sweep at a time on this node (the timer's, or one asked for).
        self._sweeping = asyncio.Lock()

    async def run_once(self) -> int:
        """One sweep; returns how many stored verdicts moved."""
        async with self._sweeping:
            return await self._sweep()

    async def _sweep(self) -> int:
        await self.lookups.reload_protected()
        self.metrics.open_appeals.set(await self.store.count_open_appeals())
        moved = 0
        if not self.policy_checked:
            rejudged = await self.store.rejudge_if_policy_changed(SWEEP_BATCH)
            if rejudged is not None:
                logger.info("verdict settings changed: %d stored verdicts moved", len(rejudged))
                moved += len(rejudged)
            self.policy_checked = True
        while True:
            due, lowered = await self.store.sweep_due_verdicts(SWEEP_BATCH)
            for verdict in lowered:
                self.metrics.verdict_decayed[verdict].inc()
            moved += len(lowered)
            if due < SWEEP_BATCH:
                return moved

    async def run(self) -> None:
        """Sweep forever; a database outage only delays the next sweep."""
        while True:
            try:
                await self.run_once()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                logger.warning("verdict sweep failed (%s); retrying in %.0f s", exc, self.interval)
            await asyncio.sleep(self.interval)
