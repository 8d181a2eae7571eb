"""Abuse limits: token buckets per API key, per reporter number, per client address.

A rate is written ``COUNT/PERIOD`` (``1000/s``, ``60/min``, ``30/h``, ``500/day``)
or ``off``: at most COUNT requests per PERIOD on average, in bursts of at most
COUNT. Buckets live in each node's memory: with N processes behind a load
balancer a client gets up to N times the configured rate in total, which is
why the defaults are per process and modest.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass

PERIODS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
}
UNLIMITED_WORDS = ("off", "none", "unlimited", "0")


@dataclass(frozen=True, slots=True)
class Rate:
    """At most ``count`` requests per ``period`` seconds, in bursts of at most ``count``."""

    count: int
    period: float
    unit: str = "s"

    @property
    def per_second(self) -> float:
        return self.count / self.period

    def __str__(self) -> str:
        return f"{self.count}/{self.unit}"


def parse_rate(text: str) -> Rate | None:
    """``"1000/s"`` -> ``Rate(1000, 1.0)``; ``"off"`` -> ``None`` (no limit)."""
    cleaned = text.strip().lower()
    if cleaned in UNLIMITED_WORDS:
        return None
    count_text, slash, unit = cleaned.partition("/")
    unit = unit.strip() or "s"
    try:
        count = int(count_text.strip())
    except ValueError:
        count = 0
    if not slash or unit not in PERIODS or count <= 0:
        raise ValueError(f"cannot read {text!r} as a rate like '100/s', '30/min', '20/h' or 'off'")
    return Rate(count, PERIODS[unit], unit)


def parse_role_rates(text: str, roles: tuple[str, ...]) -> dict[str, Rate | None]:
    """``"lookup=1000/s,report=20/s"`` -> a rate for each named role."""
    rates: dict[str, Rate | None] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        role, equals, rate = item.partition("=")
        role = role.strip()
        if not equals or role not in roles:
            raise ValueError(
                f"cannot read {item.strip()!r}: expected ROLE=RATE, ROLE one of {roles}"
            )
        rates[role] = parse_rate(rate)
    return rates


class TokenBucket:
    """Tokens refill at a steady rate up to the burst size; each request spends some.

    A request goes through while at least one token is left and then pays its
    whole cost, going into debt when it costs more than is left (a batch of
    lookups): batches are never starved, yet cost their full price on average.
    """

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: Rate, now: float) -> None:
        self.rate = rate.per_second
        self.burst = float(rate.count)
        self.tokens = self.burst
        self.stamp = now

    def take(self, cost: float, now: float) -> float:
        """Spend ``cost`` tokens: 0.0 when granted, else the seconds to wait before retrying."""
        tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if tokens >= 1.0 or cost <= 0:
            self.tokens = tokens - cost
            return 0.0
        self.tokens = tokens
        return (1.0 - tokens) / self.rate


class Limiter:
    """Token buckets by key, the least recently used forgotten past ``max_buckets``.

    Forgetting a bucket refills it, which only matters for a client that
    rotates through more than ``max_buckets`` identities; such a client is
    held by its API key's own bucket. ``max_buckets=None``: keys are few
    (API keys), nothing is forgotten and no use order is kept.
    """

    def __init__(
        self, max_buckets: int | None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_buckets = max_buckets
        self.clock = clock
        self._buckets: OrderedDict[Hashable, TokenBucket] = OrderedDict()

    def take(self, key: Hashable, rate: Rate, cost: float = 1.0) -> float:
        """0.0 when ``key`` may go on, else the seconds it must wait."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(rate, now)
            if self.max_buckets is not None and len(self._buckets) > self.max_buckets:
                self._buckets.popitem(last=False)
        elif self.max_buckets is not None:
            self._buckets.move_to_end(key)
        return bucket.take(cost, now)

    def __len__(self) -> int:
        return len(self._buckets)


def retry_after(wait: float) -> str:
    """The ``Retry-After`` value (whole seconds, at least 1) for a wait in seconds."""
    return str(max(1, math.ceil(wait)))


def describe_rates(rates: Mapping[str, Rate | None]) -> str:
    return ", ".join(f"{role}={rate or 'off'}" for role, rate in rates.items())
