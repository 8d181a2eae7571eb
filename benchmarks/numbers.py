"""Deterministic sets of Vietnamese mobile numbers: reported ones and never-reported ones.

Both sets come from the same bijection of the 7-digit subscriber part, so they
never overlap and any size up to 10M each is cheap to produce again without
keeping a list: ``reported(i)`` and ``unreported(i)`` are pure functions.
"""

from __future__ import annotations

from collections.abc import Iterator

# Mobile prefixes after +84 that phonenumbers accepts as valid (2018 numbering plan).
PREFIXES = (
    "90", "91", "93", "94", "96", "97", "98", "86", "88", "70",
    "76", "77", "78", "79", "81", "82", "83", "84", "85", "32",
)  # fmt: skip
SUBSCRIBER_SPACE = 10_000_000
# Odd and not a multiple of 5: coprime with 10**7, so j -> j * STEP mod 10**7 is a bijection.
STEP = 7_654_321
OFFSET = 1_234_567
# Index j where the never-reported numbers start, per prefix: above any reported size used.
UNREPORTED_START = 2_000_000  # 20 prefixes x 2M = 40M reported numbers at most


def _number(j: int, prefix: str) -> str:
    return f"+84{prefix}{(j * STEP + OFFSET) % SUBSCRIBER_SPACE:07d}"


def reported(i: int) -> str:
    """The i-th reported number (i < 40M)."""
    return _number(i // len(PREFIXES), PREFIXES[i % len(PREFIXES)])


def unreported(i: int) -> str:
    """The i-th number nobody reported (disjoint from every ``reported(i)``)."""
    return _number(UNREPORTED_START + i // len(PREFIXES), PREFIXES[i % len(PREFIXES)])


def reported_numbers(count: int) -> Iterator[str]:
    return (reported(i) for i in range(count))


def unreported_numbers(count: int) -> Iterator[str]:
    return (unreported(i) for i in range(count))


def national(e164: str) -> str:
    """The same number as people write it in Vietnam: ``0912345678``."""
    return "0" + e164[3:]
