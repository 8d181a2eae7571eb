"""What the published list says about a number: private ranges and offline copies.

A number is *listed* when its verdict is ``warn`` or ``block``. Numbers that
were reported but stay at ``allow`` (one or two reporters, cleared,
allowlisted) are not published: an accusation the service itself does not act
on should not be copied onto every phone, and a client that finds nothing
answers ``allow``, the same verdict the plain lookup gives.

Counts are rounded down to 1, 2, 5, 10, 20, 50 or 100 (100 meaning "100 or
more") so that the list does not reveal exact report activity; the category
is the one with the most reports. The database computes the same entry in SQL
(``published_count`` and ``published_category`` in ``sql/schema.sql``) for the
exports; the two are checked against each other by the tests.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reputation.records import NumberRecord
from reputation.verdict import BLOCK, WARN

LISTED_VERDICTS = (WARN, BLOCK)
# Published counts are rounded down to one of these (1-2-5 steps).
COUNT_STEPS = (100, 50, 20, 10, 5, 2, 1)


def published_count(count: int) -> int:
    """``count`` rounded down to 1, 2, 5, 10, 20, 50 or 100 (0 stays 0)."""
    for step in COUNT_STEPS:
        if count >= step:
            return step
    return 0


def published_category(categories: Mapping[str, int]) -> str | None:
    """The category with the most reports; ties go to the first by name."""
    if not categories:
        return None
    return min(categories, key=lambda name: (-categories[name], name))


@dataclass(frozen=True, slots=True)
class ListEntry:
    """One listed number as the published list shows it."""

    e164: str
    verdict: str
    category: str | None
    reports: int
    reporters: int

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.e164,
            "verdict": self.verdict,
            "category": self.category,
            "reports": self.reports,
            "reporters": self.reporters,
        }


def list_entry(record: NumberRecord | None, verdict: str) -> ListEntry | None:
    """The published entry of a number with this verdict, or ``None`` if it is not listed."""
    if record is None or verdict not in LISTED_VERDICTS:
        return None
    return ListEntry(
        record.e164,
        verdict,
        published_category(record.categories),
        published_count(record.reports),
        published_count(record.reporters),
    )


# pg_snapshot text: "xmin:xmax:xip1,xip2,..." (transaction ids, the list may be empty).
_SNAPSHOT = re.compile(r"([0-9]{1,19}):([0-9]{1,19}):([0-9]{1,19}(?:,[0-9]{1,19})*)?")
# Longest version accepted: a snapshot with a few hundred running transactions.
MAX_VERSION_CHARS = 8192
_MAX_TXID = (1 << 63) - 1


@dataclass(frozen=True, slots=True)
class ListVersion:
    """A version of the published list: the PostgreSQL snapshot an export was read in.

    Change sequence numbers and transaction ids are handed out when a
    transaction starts writing, not when it commits, so "everything after the
    last number I saw" would miss a change that commits late. A snapshot says
    exactly which transactions an export saw: every one below ``xmin`` and
    every one below ``xmax`` that is not ``in_progress``. A delta is then every
    entry last changed by a transaction the snapshot did not see.
    Clients treat the text (``pg_snapshot`` form) as opaque.
    """

    xmin: int
    xmax: int
    in_progress: tuple[int, ...]

    @classmethod
    def parse(cls, text: str) -> ListVersion | None:
        """The version written as ``text``, or ``None`` if it cannot be one."""
        match = _SNAPSHOT.fullmatch(text) if len(text) <= MAX_VERSION_CHARS else None
        if match is None:
            return None
        xmin, xmax = int(match.group(1)), int(match.group(2))
        in_progress = tuple(int(x) for x in match.group(3).split(",")) if match.group(3) else ()
        if not 1 <= xmin <= xmax <= _MAX_TXID:
            return None
        bounds = (xmin - 1, *in_progress, xmax)
        if any(a >= b for a, b in itertools.pairwise(bounds)):
            return None  # in progress ids are increasing and within [xmin, xmax)
        return cls(xmin, xmax, in_progress)

    def __str__(self) -> str:
        return f"{self.xmin}:{self.xmax}:{','.join(map(str, self.in_progress))}"
