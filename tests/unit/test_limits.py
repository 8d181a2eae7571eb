"""Token buckets and the way rates are written."""

from __future__ import annotations

import pytest

from reputation.constants import ROLES
from reputation.limits import Limiter, Rate, TokenBucket, parse_rate, parse_role_rates, retry_after
from reputation.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("1000/s", Rate(1000, 1.0, "s")),
        ("60/min", Rate(60, 60.0, "min")),
        (" 30 / h ", Rate(30, 3600.0, "h")),
        ("500/day", Rate(500, 86400.0, "day")),
        ("5/", Rate(5, 1.0, "s")),
        ("off", None),
        ("OFF", None),
        ("0", None),
        ("unlimited", None),
    ],
)
def test_parse_rate(text: str, rate: Rate | None) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "fast", "10", "10/week", "-5/s", "0/s", "1.5/s", "/s"])
def test_unreadable_rates_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        parse_rate(text)


def test_role_rates() -> None:
    assert parse_role_rates("lookup=10/s, admin=off,", ROLES) == {
        "lookup": Rate(10, 1.0, "s"),
        "admin": None,
    }
    with pytest.raises(ValueError, match="ROLE=RATE"):
        parse_role_rates("root=10/s", ROLES)
    with pytest.raises(ValueError, match="ROLE=RATE"):
        parse_role_rates("lookup", ROLES)


def test_settings_refuse_unreadable_limits_naming_the_variable() -> None:
    with pytest.raises(ValueError, match="REPUTATION_RATE_LIMITS"):
        Settings(rate_limits="lookup=lots")
    with pytest.raises(ValueError, match="REPUTATION_REPORTER_RATE_LIMIT"):
        Settings.from_env({"REPUTATION_REPORTER_RATE_LIMIT": "many"})


def test_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(Rate(10, 1.0), now=0.0)
    assert [bucket.take(1, 0.0) for _ in range(10)] == [0.0] * 10
    assert bucket.take(1, 0.0) == pytest.approx(0.1)
    assert bucket.take(1, 0.05) == pytest.approx(0.05)
    assert bucket.take(1, 0.1) == 0.0
    # A long pause refills to the burst, never beyond it.
    assert [bucket.take(1, 100.0) for _ in range(11)].count(0.0) == 10


def test_a_request_dearer_than_what_is_left_goes_into_debt() -> None:
    bucket = TokenBucket(Rate(100, 1.0), now=0.0)
    assert bucket.take(1, 0.0) == 0.0
    assert bucket.take(999, 0.0) == 0.0  # 99 left: a big batch goes through...
    assert bucket.take(1, 0.0) == pytest.approx(9.01)  # ...and is paid for: -900 + 1
    assert bucket.take(1, 9.0) == pytest.approx(0.01)
    assert bucket.take(1, 9.02) == 0.0
    assert bucket.take(0, 9.02) == 0.0  # costing nothing is always allowed


def test_limiter_keeps_one_bucket_per_key_and_forgets_the_oldest() -> None:
    clock = Clock()
    limiter = Limiter(max_buckets=2, clock=clock)
    rate = Rate(1, 60.0, "min")
    assert limiter.take("a", rate) == 0.0
    assert limiter.take("a", rate) == pytest.approx(60.0)
    assert limiter.take("b", rate) == 0.0
    assert limiter.take("a", rate) > 0  # "a" used last: "b" is the oldest now
    assert limiter.take("c", rate) == 0.0
    assert len(limiter) == 2
    assert limiter.take("b", rate) == 0.0  # forgotten, so full again
    clock.now += 60
    assert limiter.take("a", rate) == 0.0


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert retry_after(0.001) == "1"
    assert retry_after(1.0) == "1"
    assert retry_after(1.2) == "2"
    assert retry_after(1199.5) == "1200"
