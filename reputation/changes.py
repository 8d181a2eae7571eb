"""The change log's values: one change, and the position that says which changes a node holds.

Sequence numbers order the change log but are not commit-ordered: a
transaction holding ``seq`` 5 can commit after one holding 6, so "everything
after the last seq I applied" can skip a change for good. A node's position is
therefore a PostgreSQL snapshot (``pg_current_snapshot()``): it has applied
exactly the changes whose writing transaction is visible in that snapshot.
Each change row records its writer's top-level transaction id (``txid``), so
the changes a node still lacks are those whose ``txid`` was in progress or not
yet started when its snapshot was taken, whatever their ``seq``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

# pg_snapshot text form: "xmin:xmax:xip1,xip2,..." (the in-progress list may be empty).
_SNAPSHOT = re.compile(r"^(\d+):(\d+):([\d,]*)$")
# Keys of changes about a phone number; other kinds (API keys, ...) use other keys.
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


@dataclass(frozen=True, slots=True)
class Change:
    """One row of the change log: the answer for ``e164`` may have changed."""

    seq: int
    e164: str
    kind: str
    changed_at: datetime

    @property
    def is_about_a_number(self) -> bool:
        return bool(_E164.match(self.e164))


@dataclass(frozen=True, slots=True)
class FeedPosition:
    """The changes a node has applied: those written by transactions visible in one snapshot.

    ``xmin``: every transaction below it had finished; ``xmax``: every
    transaction from it on had not started; ``in_progress``: the transactions
    between the two that were still running.
    """

    xmin: int
    xmax: int
    in_progress: frozenset[int]

    @classmethod
    def parse(cls, text: str) -> FeedPosition:
        """A position from ``pg_current_snapshot()::text``."""
        match = _SNAPSHOT.match(text.strip())
        if match is None:
            raise ValueError(f"not a pg_snapshot: {text!r}")
        xip = frozenset(int(x) for x in match.group(3).split(",") if x)
        return cls(int(match.group(1)), int(match.group(2)), xip)

    def __str__(self) -> str:
        return f"{self.xmin}:{self.xmax}:{','.join(map(str, sorted(self.in_progress)))}"

    def includes(self, txid: int) -> bool:
        """Had the transaction ``txid`` finished when this snapshot was taken?"""
        return txid < self.xmax and txid not in self.in_progress
