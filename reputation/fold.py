"""A group of reports folded into its numbers in memory, in order. Pure code, the times passed in.

A group of reports is written with a fixed few statements whatever its size
(``Store._write_group``): the rows it touches are locked and read first, every
report is then folded here in arrival order, and the end state of each row is
written back once. Each report sees exactly what the reports before it in the
group did (the same number, the same reporter, the same reporter's day), so a
group leaves the same numbers, reporters and daily counts as writing its
reports one by one would.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from reputation import evidence
from reputation.evidence import Contribution, Counting, ReporterState
from reputation.records import NumberRecord
from reputation.verdict import Policy, judge, next_change

# A reporter of a number: (e164, reporter hash).
PairKey = tuple[str, bytes]
# A reporter's day of the daily cap: (reporter hash, reporting day).
DayKey = tuple[bytes, date]


def after_report(
    record: NumberRecord,
    category: str,
    now: datetime,
    counted: bool,
    previous: Contribution | None,
    half_life_days: float,
) -> NumberRecord:
    """A number's aggregate after one more report (``previous``: the reporter's earlier weight)."""
    categories = dict(record.categories)
    categories[category] = categories.get(category, 0) + 1
    first, last = record.first_reported_at, record.last_reported_at
    first = now if first is None else min(first, now)
    last = now if last is None else max(last, now)
    if not counted:
        return NumberRecord(
            record.e164,
            record.status,
            record.reports + 1,
            record.reporters,
            categories,
            first,
            last,
            record.weights,
            record.weights_at,
            record.heat_key,
        )
    weights = evidence.add_reporter(
        record.weights, record.weights_at, now, half_life_days, category, previous
    )
    return NumberRecord(
        record.e164,
        record.status,
        record.reports + 1,
        record.reporters + (1 if previous is None else 0),
        categories,
        first,
        last,
        weights,
        now,
        evidence.heat_key_after(record.heat_key, now),
    )


def stored_verdict(
    record: NumberRecord, now: datetime, policy: Policy, protected: bool
) -> tuple[str, datetime | None]:
    """The verdict kept in a number's row (no call context) and when decay next lowers it."""
    verdict = judge(record, now, policy, protected=protected).verdict
    return verdict, next_change(record, now, policy, protected=protected)


@dataclass(slots=True)
class LockedNumber:
    """A number locked by the group, as the fold leaves it so far."""

    record: NumberRecord
    # When an analyst cleared it (None unless its status is ``cleared``).
    cleared_at: datetime | None
    protected: bool
    # Its row was created by this group (and goes again if no report of it is kept).
    created: bool
    # The time of the last report folded into it (None: none yet).
    reported_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class FoldedReport:
    """One report's effect: its number's aggregate right after it, and whether it counted."""

    number: NumberRecord
    counted: bool


@dataclass(frozen=True, slots=True)
class NumberRow:
    """A number's row as the group leaves it."""

    record: NumberRecord
    verdict: str
    verdict_changes_at: datetime | None


def days_to_lock(
    reports: Iterable[tuple[str, bytes, datetime]],
    numbers: Mapping[str, LockedNumber],
    reporters: Mapping[PairKey, ReporterState | None],
    day_offset: float,
) -> set[DayKey]:
    """The reporter days that the group's reports ``(e164, reporter, now)`` may count on.

    A report with no earlier one of the same reporter on the same number in the
    group counts, or not, by what is stored alone; a later one may count
    whatever was stored (its day is taken, to be sure). Days locked and not
    used are dropped again when the group is written.
    """
    needed: set[DayKey] = set()
    seen: set[PairKey] = set()
    for e164, reporter, now in reports:
        pair = (e164, reporter)
        if pair in seen:
            needed.add((reporter, evidence.reporting_day(now, day_offset)))
            continue
        seen.add(pair)
        how = evidence.counting(reporters[pair], numbers[e164].cleared_at, now, day_offset)
        if how in (Counting.NEW, Counting.RENEWED):
            needed.add((reporter, evidence.reporting_day(now, day_offset)))
    return needed


class GroupFold:
    """The numbers, reporters and reporter days of a group, carried from one report to the next."""

    def __init__(
        self,
        policy: Policy,
        daily_cap: int,
        day_offset: float,
        numbers: dict[str, LockedNumber],
        reporters: dict[PairKey, ReporterState | None],
        days: dict[DayKey, int],
    ) -> None:
        self.policy = policy
        self.daily_cap = daily_cap
        self.day_offset = day_offset
        self.numbers = numbers
        self.reporters = reporters
        self.days = days
        # Rows to write back, in the order they were first changed.
        self.changed_reporters: dict[PairKey, None] = {}
        self.changed_days: dict[DayKey, None] = {}

    def add(self, e164: str, reporter: bytes, category: str, now: datetime) -> FoldedReport:
        """Fold one kept report, as ``Store`` would write it alone.

        The reporter counts (as new, or renewed on a later day) only within
        the daily cap; otherwise the report is kept and not counted.
        """
        number = self.numbers[e164]
        pair = (e164, reporter)
        state = self.reporters[pair]
        how = evidence.counting(state, number.cleared_at, now, self.day_offset)
        counted = how in (Counting.NEW, Counting.RENEWED) and self._claim_day(reporter, now)
        previous = state.contribution if state is not None else None
        if state is None or counted:
            self.reporters[pair] = ReporterState(
                now if state is None else state.first_reported_at,
                Contribution(category, now) if counted else previous,
            )
            self.changed_reporters[pair] = None
        number.record = after_report(
            number.record, category, now, counted, previous, self.policy.half_life_days
        )
        number.reported_at = now
        return FoldedReport(number.record, counted)

    def _claim_day(self, reporter: bytes, now: datetime) -> bool:
        """Take one of the reporter's counted numbers of that day; False past the daily cap."""
        day = (reporter, evidence.reporting_day(now, self.day_offset))
        taken = self.days[day]
        if taken >= self.daily_cap:
            return False
        self.days[day] = taken + 1
        self.changed_days[day] = None
        return True

    def number_rows(self) -> list[NumberRow]:
        """Every number a kept report changed, with the verdict as of its last report."""
        rows = []
        for number in self.numbers.values():
            if number.reported_at is not None:
                verdict, changes_at = stored_verdict(
                    number.record, number.reported_at, self.policy, number.protected
                )
                rows.append(NumberRow(number.record, verdict, changes_at))
        return rows

    def unused_numbers(self) -> list[str]:
        """Numbers created for the group that no kept report is about (their keys were taken)."""
        return [
            e164
            for e164, number in self.numbers.items()
            if number.created and number.reported_at is None
        ]

    def reporter_rows(self) -> list[tuple[PairKey, ReporterState]]:
        """The reporters of numbers that are new or whose contribution changed."""
        rows = []
        for pair in self.changed_reporters:
            state = self.reporters[pair]
            assert state is not None
            rows.append((pair, state))
        return rows

    def day_rows(self) -> list[tuple[DayKey, int]]:
        """Reporter days with their new count, and the ones locked but unused (count 0: dropped)."""
        return [
            (day, count)
            for day, count in self.days.items()
            if count == 0 or day in self.changed_days
        ]
