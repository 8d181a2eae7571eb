"""Evidence kept in constant time: decay, one weight per reporter, heat, the reporting day."""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime, timedelta

import pytest

from reputation import evidence
from reputation.evidence import Contribution, Counting, ReporterState

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
HALF_LIFE = 90.0


def test_decay_halves_every_half_life() -> None:
    assert evidence.decay(NOW, NOW, HALF_LIFE) == 1.0
    assert evidence.decay(NOW - timedelta(days=90), NOW, HALF_LIFE) == pytest.approx(0.5)
    assert evidence.decay(NOW - timedelta(days=365), NOW, HALF_LIFE) == pytest.approx(
        2 ** (-365 / 90)
    )
    assert evidence.decay(None, NOW, HALF_LIFE) == 0.0
    assert evidence.decay(NOW + timedelta(days=1), NOW, HALF_LIFE) == 1.0  # clock skew


def test_one_reporter_weighs_at_most_one_however_often_they_report() -> None:
    weights: dict[str, float] = {}
    at = None
    previous = None
    moment = NOW
    for _ in range(100):
        weights = evidence.add_reporter(weights, at, moment, HALF_LIFE, "scam", previous)
        at, previous = moment, Contribution("scam", moment)
        assert sum(weights.values()) == pytest.approx(1.0)
        moment += timedelta(days=3)


def test_a_renewed_report_moves_the_reporter_to_its_new_category() -> None:
    weights = evidence.add_reporter({}, None, NOW, HALF_LIFE, "spam_call", None)
    weights = evidence.add_reporter(weights, NOW, NOW, HALF_LIFE, "scam", None)
    later = NOW + timedelta(days=30)
    renewed = evidence.add_reporter(
        weights, NOW, later, HALF_LIFE, "scam", Contribution("spam_call", NOW)
    )
    assert set(renewed) == {"scam"}
    assert renewed["scam"] == pytest.approx(1.0 + 2 ** (-30 / 90))


def test_incremental_weights_equal_a_rebuild_from_every_contribution() -> None:
    rng = random.Random(7)
    latest: dict[int, Contribution] = {}
    weights: dict[str, float] = {}
    at = None
    moment = NOW
    for _ in range(300):
        moment += timedelta(hours=rng.uniform(0, 48))
        reporter = rng.randrange(40)
        category = rng.choice(["scam", "spam_call", "telemarketing"])
        weights = evidence.add_reporter(
            weights, at, moment, HALF_LIFE, category, latest.get(reporter)
        )
        at = moment
        latest[reporter] = Contribution(category, moment)
    rebuilt = evidence.weights_from(latest.values(), moment, HALF_LIFE)
    assert set(rebuilt) == set(weights)
    for category, weight in rebuilt.items():
        assert weights[category] == pytest.approx(weight, rel=1e-9)
    assert sum(weights.values()) <= len(latest)


def test_heat_counts_recent_reports_and_its_key_orders_by_current_heat() -> None:
    busy = -math.inf
    for hours in range(10):
        busy = evidence.heat_key_after(busy, NOW - timedelta(hours=hours))
    assert evidence.heat(busy, NOW) == pytest.approx(10, rel=0.05)
    assert evidence.heat(busy, NOW + timedelta(days=7)) == pytest.approx(5, rel=0.05)
    assert evidence.heat(-math.inf, NOW) == 0.0

    old_burst = -math.inf
    for _ in range(100):
        old_burst = evidence.heat_key_after(old_burst, NOW - timedelta(days=60))
    fresh = evidence.heat_key_after(-math.inf, NOW)
    for when in (NOW, NOW + timedelta(days=400)):
        by_key = sorted([("busy", busy), ("old", old_burst), ("fresh", fresh)], key=lambda x: x[1])
        by_heat = sorted(
            [("busy", busy), ("old", old_burst), ("fresh", fresh)],
            key=lambda x: evidence.heat(x[1], when),
        )
        assert [name for name, _ in by_key] == [name for name, _ in by_heat]


@pytest.mark.parametrize(
    ("moment", "offset", "day"),
    [
        (datetime(2026, 6, 1, 16, 59, tzinfo=UTC), 7.0, date(2026, 6, 1)),
        (datetime(2026, 6, 1, 17, 0, tzinfo=UTC), 7.0, date(2026, 6, 2)),
        (datetime(2026, 6, 1, 23, 59, tzinfo=UTC), 0.0, date(2026, 6, 1)),
        (datetime(2026, 6, 1, 2, 0, tzinfo=UTC), -5.0, date(2026, 5, 31)),
    ],
)
def test_reporting_day(moment: datetime, offset: float, day: date) -> None:
    assert evidence.reporting_day(moment, offset) == day


CLEARED = NOW - timedelta(days=10)


@pytest.mark.parametrize(
    ("reporter", "cleared_at", "now", "expected"),
    [
        (None, None, NOW, Counting.NEW),
        (None, CLEARED, NOW, Counting.NEW),
        (ReporterState(NOW - timedelta(days=3), None), None, NOW, Counting.NEW),
        (
            ReporterState(NOW, Contribution("scam", NOW - timedelta(hours=1))),
            None,
            NOW,
            Counting.SAME_DAY,
        ),
        (
            ReporterState(NOW, Contribution("scam", NOW - timedelta(days=1))),
            None,
            NOW,
            Counting.RENEWED,
        ),
        (
            ReporterState(CLEARED - timedelta(days=1), Contribution("scam", CLEARED)),
            CLEARED,
            NOW,
            Counting.BEFORE_CLEARING,
        ),
        (
            ReporterState(CLEARED - timedelta(days=1), None),
            CLEARED,
            NOW,
            Counting.BEFORE_CLEARING,
        ),
        (
            ReporterState(
                CLEARED + timedelta(days=1), Contribution("scam", CLEARED + timedelta(days=1))
            ),
            CLEARED,
            NOW,
            Counting.RENEWED,
        ),
    ],
)
def test_counting(
    reporter: ReporterState | None, cleared_at: datetime | None, now: datetime, expected: Counting
) -> None:
    assert evidence.counting(reporter, cleared_at, now, 7.0) is expected
