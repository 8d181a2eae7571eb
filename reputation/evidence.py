"""How a report changes a number's evidence, in constant time. Pure code, the time passed in.

A number's evidence is, per category, the number of its distinct reporters,
each weighing 1 at their last counted report and half as much every
half-life. All categories decay at the same rate, so the aggregate keeps one
sum per category as of one moment ``at``, and reading or updating it is one
multiplication: ``w(t) = w(at) * 2 ** (-(t - at) / half_life)``. No lookup and
no report ever loops over a number's reports.

Heat (recent activity) is kept as one number, ``heat_key``: the log2 of the
sum of ``2 ** (t_i / HEAT_HALF_LIFE)`` over the counted reports, with times in
days since 1970. Heat now is ``2 ** (heat_key - now / HEAT_HALF_LIFE)``, and
ordering numbers by ``heat_key`` orders them by current heat at any time, so
the review queue can keep an index on it.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from reputation.constants import HEAT_HALF_LIFE_DAYS

SECONDS_PER_DAY = 86_400.0
# Weights below this are rounding noise left by a subtraction, not a reporter.
_NEGLIGIBLE = 1e-9

Weights = Mapping[str, float]


def days_between(earlier: datetime, later: datetime) -> float:
    return (later - earlier).total_seconds() / SECONDS_PER_DAY


def decay(since: datetime | None, now: datetime, half_life_days: float) -> float:
    """How much of a weight of 1 at ``since`` is left at ``now`` (1 for a future ``since``)."""
    if since is None:
        return 0.0
    days = (now - since).total_seconds() / SECONDS_PER_DAY
    return math.exp2(-days / half_life_days) if days > 0.0 else 1.0


def weights_now(
    weights: Weights, at: datetime | None, now: datetime, half_life_days: float
) -> dict[str, float]:
    """The per-category weights as of ``now``."""
    factor = decay(at, now, half_life_days)
    return {category: weight * factor for category, weight in weights.items()}


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one reporter currently adds to a number: 1 in ``category`` at ``counted_at``."""

    category: str
    counted_at: datetime


def add_reporter(
    weights: Weights,
    at: datetime | None,
    now: datetime,
    half_life_days: float,
    category: str,
    previous: Contribution | None,
) -> dict[str, float]:
    """The weights as of ``now`` after a reporter counts (again) with a report in ``category``.

    A reporter's earlier contribution is replaced, never added to: however
    often they report, one reporter weighs at most 1.
    """
    current = weights_now(weights, at, now, half_life_days)
    if previous is not None:
        left = current.get(previous.category, 0.0) - decay(previous.counted_at, now, half_life_days)
        current[previous.category] = max(0.0, left)
    current[category] = current.get(category, 0.0) + 1.0
    return {c: w for c, w in current.items() if w > _NEGLIGIBLE}


def weights_from(
    contributions: Iterable[Contribution], now: datetime, half_life_days: float
) -> dict[str, float]:
    """The weights as of ``now`` rebuilt from every contribution (after a status change)."""
    weights: dict[str, float] = {}
    for item in contributions:
        weights[item.category] = weights.get(item.category, 0.0) + decay(
            item.counted_at, now, half_life_days
        )
    return {c: w for c, w in weights.items() if w > _NEGLIGIBLE}


_HEAT_SECONDS = HEAT_HALF_LIFE_DAYS * SECONDS_PER_DAY


def _heat_units(moment: datetime) -> float:
    return moment.timestamp() / _HEAT_SECONDS


def heat_key_after(heat_key: float, now: datetime) -> float:
    """``heat_key`` after one more counted report at ``now`` (a stable log-sum-exp)."""
    added = _heat_units(now)
    if heat_key == -math.inf:
        return added
    high, low = max(heat_key, added), min(heat_key, added)
    return high + math.log2(1.0 + math.exp2(low - high))


def heat(heat_key: float, now: datetime) -> float:
    """Counted reports of recent days, each halving every ``HEAT_HALF_LIFE_DAYS``."""
    if heat_key == -math.inf:
        return 0.0
    units = now.timestamp() / _HEAT_SECONDS
    return math.exp2(min(heat_key - units, 64.0))


def reporting_day(moment: datetime, utc_offset_hours: float) -> date:
    """The day of the daily cap that ``moment`` falls in."""
    return (moment.astimezone(UTC) + timedelta(hours=utc_offset_hours)).date()


class Counting(enum.Enum):
    """What a report does to its reporter's contribution to the number."""

    NEW = "new"  # first counted report of this reporter on this number
    RENEWED = "renewed"  # counts again on a later day: their weight is back to 1
    SAME_DAY = "same_day"  # already counted today: nothing changes
    BEFORE_CLEARING = "before_clearing"  # reported before an analyst cleared it: never again


@dataclass(frozen=True, slots=True)
class ReporterState:
    """What the number already knows about this reporter."""

    first_reported_at: datetime
    contribution: Contribution | None  # None: recorded, never counted (over the cap)


def counting(
    reporter: ReporterState | None,
    cleared_at: datetime | None,
    now: datetime,
    utc_offset_hours: float,
) -> Counting:
    """Whether a report may count, before the daily cap is asked (``cleared_at``: when cleared).

    A cleared number is answered ``allow`` until reporters who had not reported
    it before the clearing do: the earlier reporters never count on it again.
    """
    if reporter is None:
        return Counting.NEW
    if cleared_at is not None and reporter.first_reported_at <= cleared_at:
        return Counting.BEFORE_CLEARING
    if reporter.contribution is None:
        return Counting.NEW
    today = reporting_day(now, utc_offset_hours)
    if reporting_day(reporter.contribution.counted_at, utc_offset_hours) == today:
        return Counting.SAME_DAY
    return Counting.RENEWED
