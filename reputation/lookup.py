"""The lookup path: Bloom filter, then hot cache, then one indexed query.

``from_memory`` is plain synchronous code with no I/O: it answers every
number the filter has never seen and every cached number. Only what it cannot
answer awaits Postgres, and that answer then enters the cache.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote

import asyncpg

from reputation.bloom import GROWTH_FACTOR, NumberFilter
from reputation.cache import HotCache
from reputation.constants import MAX_WARM_NUMBERS
from reputation.metrics import Metrics, NodeGauges
from reputation.records import NumberRecord
from reputation.settings import Settings
from reputation.store import Store
from reputation.verdict import ALLOW, Judgement, Policy, judge

logger = logging.getLogger(__name__)


class _Unlisted:
    """Cache marker: the database has nothing on this number (a Bloom false positive)."""


UNLISTED: Final = _Unlisted()


@dataclass(frozen=True, slots=True)
class Answer:
    """What is known about one number, and which layer knew it."""

    e164: str
    record: NumberRecord | None
    layer: str


class Lookups:
    """The per-process lookup state: the filter and the cache in front of the store."""

    def __init__(
        self, settings: Settings, store: Store, metrics: Metrics, clock: Callable[[], datetime]
    ) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.policy = Policy.from_settings(settings)
        # Protected numbers, known without a query (a small set, loaded with the filter).
        self.protected: set[str] = set()
        # None until loaded from Postgres: lookups then go to the database.
        self.filter: NumberFilter | None = None
        self.cache: HotCache[NumberRecord | _Unlisted] = HotCache(
            settings.cache_size, settings.cache_ttl
        )
        # Numbers added while a filter is being built, replayed into it before the swap.
        self._added_during_build: list[str] | None = None
        self._rebuild: asyncio.Task[None] | None = None
        metrics.watch_node(
            NodeGauges(
                bloom_items=lambda: len(self.filter) if self.filter else 0,
                bloom_capacity=lambda: self.filter.capacity if self.filter else 0,
                bloom_fill_ratio=lambda: self.filter.fill_ratio() if self.filter else 0.0,
                bloom_false_positive_rate=lambda: (
                    self.filter.estimated_false_positive_rate() if self.filter else 0.0
                ),
                cache_entries=lambda: len(self.cache),
                cache_hits=lambda: self.cache.hits,
                cache_misses=lambda: self.cache.misses,
            )
        )

    @property
    def loaded(self) -> bool:
        return self.filter is not None

    def from_memory(self, e164: str) -> Answer | None:
        """The answer if memory alone can give it; ``None`` means ask Postgres."""
        number_filter = self.filter
        if number_filter is not None and e164 not in number_filter:
            return Answer(e164, None, "bloom")
        cached = self.cache.get(e164)
        if cached is None:
            return None
        return Answer(e164, None if cached is UNLISTED else cached, "cache")  # type: ignore[arg-type]

    async def lookup(self, e164: str) -> Answer:
        answer = self.from_memory(e164)
        if answer is not None:
            return answer
        record = await self.store.fetch_number(e164)
        self.cache.put(e164, record if record is not None else UNLISTED)
        return Answer(e164, record, "database")

    async def lookup_many(self, numbers: list[str]) -> dict[str, Answer]:
        """Answers for several numbers with at most one query for all the misses."""
        answers: dict[str, Answer] = {}
        misses = []
        for e164 in numbers:
            answer = self.from_memory(e164)
            if answer is None:
                misses.append(e164)
            else:
                answers[e164] = answer
        if misses:
            records = await self.store.fetch_numbers(misses)
            for e164 in misses:
                record = records.get(e164)
                self.cache.put(e164, record if record is not None else UNLISTED)
                answers[e164] = Answer(e164, record, "database")
        return answers

    def remember(self, record: NumberRecord) -> None:
        """Make a change this process just committed visible to its next lookup."""
        self.add_to_filter(record.e164)
        self.cache.put(record.e164, record)

    def add_to_filter(self, e164: str) -> None:
        if self.filter is not None:
            self.filter.add(e164)
            if self.filter.needs_rebuild and self._rebuild is None:
                self._rebuild = asyncio.get_running_loop().create_task(self._rebuild_filter())
        if self._added_during_build is not None:
            self._added_during_build.append(e164)

    def judge(self, answer: Answer, attestation: str | None = None) -> Judgement:
        """The verdict for this answer now (``attestation``: the call's STIR/SHAKEN outcome)."""
        return judge(
            answer.record,
            self.clock(),
            self.policy,
            protected=answer.e164 in self.protected,
            attestation=attestation,
        )

    def appeal_url(self, e164: str, judgement: Judgement) -> str | None:
        """Where the owner of a flagged number can appeal (SIP Call-Info with a 608, RFC 8688)."""
        base = self.settings.appeal_base_url
        if base is None or judgement.verdict == ALLOW:
            return None
        return f"{base}{'&' if '?' in base else '?'}number={quote(e164, safe='')}"

    async def reload_protected(self) -> None:
        """Read the protected numbers again (start-up, and the periodic sweep as a safety net)."""
        self.protected = await self.store.protected_keys()
        self.metrics.protected_numbers.set(len(self.protected))

    def set_protected(self, e164: str, protected: bool) -> None:
        """Apply a protected-list change (this node's own, or one read from the change log)."""
        if protected:
            self.protected.add(e164)
        else:
            self.protected.discard(e164)
        self.metrics.protected_numbers.set(len(self.protected))

    async def load(self) -> None:
        """Fill the filter from Postgres and warm the cache; the node is ready after."""
        started = time.perf_counter()
        await self.reload_protected()
        self.filter = await self.build_filter()
        for record in await self.store.most_reported(
            min(self.settings.cache_size, MAX_WARM_NUMBERS)
        ):
            self.cache.put(record.e164, record)
        logger.info(
            "Bloom filter loaded: %d numbers, capacity %d, in %.2f s",
            len(self.filter),
            self.filter.capacity,
            time.perf_counter() - started,
        )

    async def load_with_retry(self, max_delay: float = 10.0) -> None:
        """``load``, tried again with growing pauses while Postgres cannot be read."""
        delay = 0.25
        while True:
            try:
                await self.load()
                return
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                logger.warning(
                    "cannot load the Bloom filter yet (%s); retrying in %.1f s", exc, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, max_delay)

    async def build_filter(self) -> NumberFilter:
        """A new filter holding every known number, sized with room to grow."""
        self._added_during_build = []
        try:
            count = await self.store.count_numbers()
            capacity = max(self.settings.bloom_capacity, count * GROWTH_FACTOR)
            number_filter = NumberFilter(capacity, self.settings.bloom_error_rate)
            async for batch in self.store.number_keys():
                for e164 in batch:
                    number_filter.add(e164)
            for e164 in self._added_during_build:
                number_filter.add(e164)
        finally:
            self._added_during_build = None
        return number_filter

    async def _rebuild_filter(self) -> None:
        try:
            new_filter = await self.build_filter()
            logger.info("Bloom filter rebuilt with capacity %d", new_filter.capacity)
            self.filter = new_filter
        except Exception:
            logger.exception("Bloom filter rebuild failed; the overflow set keeps answers exact")
        finally:
            self._rebuild = None


def answer_body(
    answer: Answer, judgement: Judgement, appeal_url: str | None = None
) -> dict[str, Any]:
    """The JSON object of a lookup answer."""
    record = answer.record
    if record is None:
        return {
            "number": answer.e164,
            "reported": False,
            "verdict": judgement.verdict,
            "score": judgement.score,
            "confidence": judgement.confidence,
            "reports": 0,
            "reporters": 0,
            "heat": 0.0,
            "categories": {},
            "status": None,
            "first_reported_at": None,
            "last_reported_at": None,
            "reasons": list(judgement.reasons),
            "appeal_url": appeal_url,
        }
    return {
        "number": record.e164,
        "reported": record.reports > 0,
        "verdict": judgement.verdict,
        "score": judgement.score,
        "confidence": judgement.confidence,
        "reports": record.reports,
        "reporters": record.reporters,
        "heat": judgement.heat,
        "categories": dict(record.categories),
        "status": record.status,
        "first_reported_at": _iso(record.first_reported_at),
        "last_reported_at": _iso(record.last_reported_at),
        "reasons": list(judgement.reasons),
        "appeal_url": appeal_url,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
