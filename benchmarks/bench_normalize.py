"""Cost of ``normalize`` against the plain ``phonenumbers`` parse, measured side by side.

Run: ``python -m benchmarks.bench_normalize [--numbers N] [--repeat R]``.

For each written form, N distinct numbers (so nothing is answered from a
cache) go through ``normalize`` and through ``phonenumbers.parse`` +
``is_valid_number``; the best of R rounds is printed in ns per call, with the
ratio (below 1.0: ``normalize`` is cheaper). The baseline does less than
``normalize``: it neither maps old numbers nor rejects letters.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import time
from collections.abc import Callable, Sequence

import phonenumbers

from reputation.errors import InvalidNumber
from reputation.normalize import normalize


def baseline(text: str) -> None:
    """What a carrier engineer would write: the library's parse and validity check."""
    with contextlib.suppress(phonenumbers.NumberParseException):
        phonenumbers.is_valid_number(phonenumbers.parse(text, "VN"))


def ours(text: str) -> None:
    with contextlib.suppress(InvalidNumber):
        normalize(text, "VN")


def mobiles(count: int, rng: random.Random) -> list[str]:
    """Distinct 9-digit national mobile numbers (Viettel, VinaPhone, MobiFone blocks)."""
    blocks = ["32", "33", "35", "38", "39", "70", "76", "77", "81", "83", "86", "88", "90", "91",
              "93", "94", "96", "97", "98"]  # fmt: skip
    found: set[str] = set()
    while len(found) < count:
        found.add(rng.choice(blocks) + f"{rng.randrange(10**7):07d}")
    return sorted(found)


def forms(count: int) -> dict[str, list[str]]:
    rng = random.Random(156)
    nationals = mobiles(count, rng)
    old = {"36": "166", "38": "168", "70": "120", "77": "122", "83": "123", "81": "127"}
    olds = [n for n in nationals if n[:2] in old]
    return {
        "+84912345678 (E.164)": ["+84" + n for n in nationals],
        "0912345678 (national)": ["0" + n for n in nationals],
        "0912 345 678 (spaced)": [f"0{n[:3]} {n[3:6]} {n[6:]}" for n in nationals],
        "0912.345.678 (dotted)": [f"0{n[:3]}.{n[3:6]}.{n[6:]}" for n in nationals],
        "01662345678 (old 11-digit)": ["0" + old[n[:2]] + n[2:] for n in olds],
        "SĐT: 0912 345 678 (label)": [f"SĐT: 0{n[:3]} {n[3:6]} {n[6:]}" for n in nationals],
        "+84 (0) 912 345 678": [f"+84 (0) {n[:3]} {n[3:6]} {n[6:]}" for n in nationals],
        "(024) 3822 1234 (landline)": [f"(024) 3{n[2:5]} {n[5:]}" for n in nationals],
    }


def ns_per_call(function: Callable[[str], None], inputs: Sequence[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter_ns()
        for text in inputs:
            function(text)
        best = min(best, (time.perf_counter_ns() - started) / len(inputs))
    return best


def run(count: int, repeat: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for name, inputs in forms(count).items():
        # Both sides must take the success path, or the figures compare nothing.
        assert all(normalize(text) for text in inputs), name
        ours_ns = ns_per_call(ours, inputs, repeat)
        baseline_ns = ns_per_call(baseline, inputs, repeat)
        rows.append(
            {"form": name, "normalize_ns": ours_ns, "phonenumbers_ns": baseline_ns,
             "ratio": ours_ns / baseline_ns}
        )  # fmt: skip
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numbers", type=int, default=20_000, help="distinct numbers per form")
    parser.add_argument("--repeat", type=int, default=5, help="rounds; the best is kept")
    args = parser.parse_args(argv)
    rows = run(args.numbers, args.repeat)
    print(f"normalize vs phonenumbers.parse + is_valid_number, {args.numbers} distinct numbers")
    print(f"{'written form':<30} {'normalize':>12} {'phonenumbers':>14} {'ratio':>7}")
    for row in rows:
        print(
            f"{row['form']:<30} {row['normalize_ns']:>9,.0f} ns {row['phonenumbers_ns']:>11,.0f} ns"
            f" {row['ratio']:>7.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
