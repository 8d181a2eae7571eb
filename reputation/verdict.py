"""The policy that turns what is known about a number into allow, warn or block.

Pure code: no I/O, no clock of its own. The lookup passes the time in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from reputation.records import NumberRecord

ALLOW, WARN, BLOCK = "allow", "warn", "block"

# Distinct reporters needed before a number is flagged; one person alone never is.
WARN_REPORTERS = 3
BLOCK_REPORTERS = 10
# Each further distinct reporter removes this share of the remaining doubt.
SCORE_STEP = 0.2


@dataclass(frozen=True, slots=True)
class Judgement:
    """A verdict with the score and the reasons a carrier or an analyst can quote."""

    verdict: str
    score: float
    reasons: tuple[str, ...]


NOT_REPORTED = Judgement(ALLOW, 0.0, ())


def judge(record: NumberRecord | None, now: datetime) -> Judgement:
    """The verdict for a number, from its aggregate (``None``: nobody reported it)."""
    if record is None or (record.reports == 0 and record.status == "reported"):
        return NOT_REPORTED
    if record.status == "allowlisted":
        return Judgement(ALLOW, 0.0, ("allowlisted",))
    if record.status == "cleared":
        return Judgement(ALLOW, 0.0, ("cleared",))
    if record.status == "confirmed":
        return Judgement(BLOCK, 1.0, ("confirmed",))
    score = round(1.0 - (1.0 - SCORE_STEP) ** record.reporters, 3)
    if record.reporters >= BLOCK_REPORTERS:
        return Judgement(BLOCK, score, ("reported_by_many",))
    if record.reporters >= WARN_REPORTERS:
        return Judgement(WARN, score, ("reported_by_several",))
    return Judgement(ALLOW, score, ("few_reports",))
