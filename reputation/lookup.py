"""The lookup path: Bloom filter, then hot cache, then one indexed query.

``from_memory`` is plain synchronous code with no I/O: it answers every
number the filter has never seen and every cached number. Only what it cannot
answer awaits Postgres, and that answer then enters the cache. While Postgres
is down (or slower than ``lookup_timeout``) such a number gets its last known
answer, or else a fail-open ``allow``; both say ``"degraded": true``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote

import asyncpg

from reputation.bloom import NumberFilter
from reputation.cache import HotCache
from reputation.changes import Change
from reputation.constants import CHANGE_PROTECTED
from reputation.health import UNAVAILABLE, DatabaseHealth
from reputation.metrics import Metrics, NodeGauges
from reputation.records import NumberRecord
from reputation.settings import Settings
from reputation.store import Store
from reputation.verdict import ALLOW, Judgement, Policy, judge

logger = logging.getLogger(__name__)

# Own changes remembered until the feed brings them back (bounded in case it cannot).
MAX_OWN_CHANGES = 100_000


class _Unlisted:
    """Cache marker: the database has nothing on this number (a Bloom false positive)."""


UNLISTED: Final = _Unlisted()
# The layer that answers for a number the filter has never seen.
BLOOM: Final = "bloom"


@dataclass(frozen=True, slots=True)
class Answer:
    """What is known about one number, and which layer knew it.

    ``degraded``: Postgres could not be asked; the answer is the last one this
    node knew (layer ``last_known``) or a fail-open "not reported" (``fail_open``).
    """

    e164: str
    record: NumberRecord | None
    layer: str
    degraded: bool = False


class Lookups:
    """The per-process lookup state: the filter and the cache in front of the store."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        metrics: Metrics,
        clock: Callable[[], datetime],
        health: DatabaseHealth | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.policy = Policy.from_settings(settings)
        # Protected numbers, known without a query (a small set, loaded with the filter).
        self.protected: set[str] = set()
        self.health = health if health is not None else DatabaseHealth()
        # None until loaded (see filters.py): lookups then go to the database.
        self.filter: NumberFilter | None = None
        self.cache: HotCache[NumberRecord | _Unlisted] = HotCache(
            settings.cache_size, settings.cache_ttl
        )
        # Numbers added while a new filter is being built, replayed into it before the swap.
        self._recording: list[str] | None = None
        # Change log rows written by this node, whose new state it cached at once.
        self._own_changes: OrderedDict[int, str] = OrderedDict()
        # Other in-memory state that follows this node's own changes (the range index).
        self.listeners: list[Callable[[NumberRecord], None]] = []
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

    def certainly_unreported(self, e164: str) -> bool:
        """True when the filter has never seen this number and it is not protected.

        Its answer is then the same for everyone at any time (``NOT_REPORTED``):
        the most frequent lookup needs no answer object and no clock.
        """
        number_filter = self.filter
        if number_filter is None or e164 in number_filter:
            return False
        return e164 not in self.protected

    def from_memory(self, e164: str) -> Answer | None:
        """The answer if memory alone can give it; ``None`` means ask Postgres."""
        number_filter = self.filter
        if number_filter is not None and e164 not in number_filter:
            return Answer(e164, None, BLOOM)
        cached = self.cache.get(e164)
        if cached is None:
            return None
        return Answer(e164, None if cached is UNLISTED else cached, "cache")  # type: ignore[arg-type]

    def from_last_known(self, e164: str) -> Answer:
        """The answer without Postgres: the last one known here, else fail-open."""
        known = self.cache.last_known(e164)
        if known is None:
            return Answer(e164, None, "fail_open", degraded=True)
        return Answer(e164, None if known is UNLISTED else known, "last_known", degraded=True)  # type: ignore[arg-type]

    async def lookup(self, e164: str) -> Answer:
        answer = self.from_memory(e164)
        if answer is not None:
            return answer
        records = await self._fetch([e164])
        if records is None:
            return self.from_last_known(e164)
        record = records.get(e164)
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
            records = await self._fetch(misses)
            for e164 in misses:
                if records is None:
                    answers[e164] = self.from_last_known(e164)
                    continue
                record = records.get(e164)
                self.cache.put(e164, record if record is not None else UNLISTED)
                answers[e164] = Answer(e164, record, "database")
        return answers

    async def _fetch(self, numbers: list[str]) -> dict[str, NumberRecord] | None:
        """The records of ``numbers`` from Postgres, or ``None`` if it cannot answer in time."""
        if not self.health.worth_trying():
            return None
        try:
            async with asyncio.timeout(self.settings.lookup_timeout):
                records = await self.store.lookup_numbers(numbers)
        except (*UNAVAILABLE, asyncpg.PostgresError) as exc:
            logger.warning("lookup answered from memory: %s", exc.__class__.__name__)
            self.metrics.database_errors.labels("lookup").inc()
            self.health.failed()
            return None
        self.health.succeeded()
        return records

    def remember(self, record: NumberRecord, change_seq: int | None = None) -> None:
        """Make a change this process just committed visible to its next lookup.

        ``change_seq`` is the change log row of that change: when the feed
        brings it back, the cached answer is already the new one.
        """
        self.add_to_filter(record.e164)
        self.cache.put(record.e164, record)
        if change_seq is not None:
            self._own_changes[change_seq] = record.e164
            if len(self._own_changes) > MAX_OWN_CHANGES:
                self._own_changes.popitem(last=False)
        for listener in self.listeners:
            listener(record)

    def apply_changes(self, changes: Sequence[Change]) -> None:
        """Change feed subscriber: a changed number is listed, and its cached answer is stale."""
        own = self._own_changes
        for change in changes:
            if change.is_about_a_number:
                self.add_to_filter(change.e164)
                if own.pop(change.seq, None) is None:
                    self.cache.expire(change.e164)

    async def apply_protected_changes(self, changes: Sequence[Change]) -> None:
        """Change feed subscriber: an edit of the protected list means reading it again."""
        if any(change.kind == CHANGE_PROTECTED for change in changes):
            await self.reload_protected()

    def forget_own_changes(self) -> None:
        """After a reload the cache is empty: nothing cached stems from this node's writes."""
        self._own_changes.clear()

    def add_to_filter(self, e164: str) -> None:
        if self.filter is not None:
            self.filter.add(e164)
        if self._recording is not None:
            self._recording.append(e164)

    @contextmanager
    def recording(self) -> Iterator[list[str]]:
        """Keep every number added meanwhile, for a filter being built to take in."""
        added: list[str] = []
        self._recording = added
        try:
            yield added
        finally:
            self._recording = None

    def install(self, number_filter: NumberFilter, added_meanwhile: list[str]) -> None:
        """Swap in a new filter at once (no await: a lookup sees the old or the new one)."""
        for e164 in added_meanwhile:
            number_filter.add(e164)
        self.filter = number_filter

    def judge(
        self, answer: Answer, attestation: str | None = None, now: datetime | None = None
    ) -> Judgement:
        """The verdict for this answer now (``attestation``: the call's STIR/SHAKEN outcome).

        ``now``: the instant to judge at, when a caller judges many answers at once.
        """
        return judge(
            answer.record,
            self.clock() if now is None else now,
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


def answer_body(
    answer: Answer, judgement: Judgement, appeal_url: str | None = None
) -> dict[str, Any]:
    """The JSON object of a lookup answer."""
    record = answer.record
    if record is None:
        return {
            "number": answer.e164,
            "degraded": answer.degraded,
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
        "degraded": answer.degraded,
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
