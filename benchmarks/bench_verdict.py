"""Cost of judging a number on the hot path, and of folding a report in, side by side.

Run: ``python -m benchmarks.bench_verdict [--numbers N] [--repeat R]``.

The lookup judges every answer afresh from the cached aggregate. This prints,
in ns per call (best of R rounds over N distinct records):

- ``judge`` on records like real ones (1 to 3 categories, ages up to a year),
  plain, for a protected number, and with a STIR/SHAKEN attestation, against
  a floor measured in the same run: a function returning a constant
  judgement (what an unreported number costs);
- folding one report into the aggregate (``evidence.add_reporter`` and
  ``heat_key_after``, constant time) against rebuilding the evidence from
  every reporter (``evidence.weights_from``, what a loop over reports would
  cost) for 10, 100 and 1000 reporters.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from reputation import evidence
from reputation.evidence import Contribution
from reputation.records import NumberRecord
from reputation.verdict import DEFAULT_POLICY, NOT_REPORTED, Judgement, judge

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
HALF_LIFE = DEFAULT_POLICY.half_life_days


def records(count: int, rng: random.Random) -> list[NumberRecord]:
    found = []
    for i in range(count):
        categories = rng.sample(
            ["scam", "impersonation", "spam_call", "telemarketing"], rng.randint(1, 3)
        )
        weights = {c: rng.uniform(0.2, 12.0) for c in categories}
        at = NOW - timedelta(days=rng.uniform(0, 365))
        found.append(
            NumberRecord(
                e164=f"+8491{i:07d}",
                status="reported",
                reports=20,
                reporters=12,
                categories={c: 5 for c in categories},
                first_reported_at=at,
                last_reported_at=at,
                weights=weights,
                weights_at=at,
                heat_key=evidence.heat_key_after(-math.inf, at),
            )
        )
    return found


def floor(record: NumberRecord | None, now: datetime) -> Judgement:
    return NOT_REPORTED


def ns_per_call(call: Callable[[Any], object], inputs: Sequence[Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter_ns()
        for item in inputs:
            call(item)
        best = min(best, (time.perf_counter_ns() - started) / len(inputs))
    return best


def judging(count: int, repeat: int) -> list[tuple[str, float]]:
    numbers = records(count, random.Random(4))
    base = ns_per_call(lambda r: floor(r, NOW), numbers, repeat)
    return [
        ("floor: constant judgement", base),
        ("judge(record, now)", ns_per_call(lambda r: judge(r, NOW), numbers, repeat)),
        (
            "judge(..., protected=True)",
            ns_per_call(lambda r: judge(r, NOW, protected=True), numbers, repeat),
        ),
        (
            "judge(..., attestation='C')",
            ns_per_call(lambda r: judge(r, NOW, attestation="C"), numbers, repeat),
        ),
    ]


def folding(repeat: int) -> list[tuple[str, float]]:
    rng = random.Random(5)
    rows = []
    weights = {"scam": 3.2, "spam_call": 1.1}
    previous = Contribution("scam", NOW - timedelta(days=40))

    def fold(_: object) -> None:
        evidence.add_reporter(weights, NOW - timedelta(days=2), NOW, HALF_LIFE, "scam", previous)
        evidence.heat_key_after(2900.0, NOW)

    rows.append(("fold one report (constant time)", ns_per_call(fold, range(2000), repeat)))
    for reporters in (10, 100, 1000):
        contributions = [
            Contribution(
                rng.choice(["scam", "spam_call"]), NOW - timedelta(days=rng.uniform(0, 365))
            )
            for _ in range(reporters)
        ]
        rows.append(
            (
                f"rebuild from {reporters} reporters",
                ns_per_call(
                    lambda _, c=contributions: evidence.weights_from(c, NOW, HALF_LIFE),  # type: ignore[misc]
                    range(max(20, 20_000 // reporters)),
                    repeat,
                ),
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numbers", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    for title, rows in (
        ("judging a number (hot path)", judging(args.numbers, args.repeat)),
        ("folding a report into its number", folding(args.repeat)),
    ):
        base = rows[0][1]
        print(f"\n{title}")
        print(f"{'':40} {'ns/call':>10} {'ratio':>8}")
        for name, ns in rows:
            print(f"{name:40} {ns:10.0f} {ns / base:8.2f}")


if __name__ == "__main__":
    main()
