"""The policy that turns what is known about a number into allow, warn or block.

Pure code: no I/O, no clock of its own. The caller passes the time, the
policy (built once from the settings), whether the number is protected and,
for a call being set up, its STIR/SHAKEN attestation.

Evidence
    Each distinct reporter weighs 1 at their last counted report, halving
    every ``half_life_days`` (``evidence.py`` keeps the sums per category in
    constant time). ``evidence = sum(category_weight[c] * reporters_c(now))``.
Verdict by evidence
    ``block`` from ``block_at``, ``warn`` from ``warn_at``, else ``allow``.
    With the defaults (weights: scam 1, spam 0.5, telemarketing 0.25;
    thresholds 2.5 and 9) one reporter alone never gets past ``allow``, three
    recent scam reporters give ``warn`` and ten give ``block``; a number silent
    for a year has lost 94% of its weight and is back to ``allow``.
Score
    ``min(1, evidence / block_at)``: 1 means "enough to block".
Confidence
    How much evidence there is, whatever its category: the 95% Wilson lower
    bound on the share of reporters who are right when ``n`` (decayed)
    independent reporters all agree, ``n / (n + 1.96**2)``: 0.21 for one
    reporter, 0.44 for three, 0.72 for ten, 0.89 for thirty. An analyst's
    decision is 1.
Statuses (set by analysts)
    ``confirmed``: block. ``allowlisted``: allow, whatever the reports.
    ``cleared``: judged on the evidence of reporters new since the clearing
    only (``evidence.counting``), so allow until new people report it.
Protected numbers
    Never ``block`` (capped at ``warn``). A call showing one without full
    (``A``) attestation is answered ``spoofed_protected_verdict`` with reason
    ``spoofed_protected_number``. A reported number whose caller-ID
    validation failed is at least ``warn`` (``failed_validation``).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, NamedTuple

from reputation import evidence
from reputation.records import NumberRecord

if TYPE_CHECKING:
    from reputation.settings import Settings

ALLOW, WARN, BLOCK = "allow", "warn", "block"
_RANK = {ALLOW: 0, WARN: 1, BLOCK: 2}

# Every reason a verdict can give: metrics are labelled by them, so the set is closed.
NOT_REPORTED_REASON = "not_reported"
FEW_REPORTS = "few_reports"  # some evidence, below the warn threshold
OLD_REPORTS = "old_reports"  # was flagged at its last report, has decayed since
REPORTED_BY_SEVERAL = "reported_by_several"  # warn by evidence
REPORTED_BY_MANY = "reported_by_many"  # block by evidence
CONFIRMED, CLEARED, ALLOWLISTED = "confirmed", "cleared", "allowlisted"
REPORTED_AFTER_CLEARING = "reported_after_clearing"
PROTECTED_NUMBER = "protected_number"
SPOOFED_PROTECTED_NUMBER = "spoofed_protected_number"
FAILED_VALIDATION = "failed_validation"
REASONS = (
    NOT_REPORTED_REASON,
    FEW_REPORTS,
    OLD_REPORTS,
    REPORTED_BY_SEVERAL,
    REPORTED_BY_MANY,
    CONFIRMED,
    CLEARED,
    REPORTED_AFTER_CLEARING,
    ALLOWLISTED,
    PROTECTED_NUMBER,
    SPOOFED_PROTECTED_NUMBER,
    FAILED_VALIDATION,
)

# STIR/SHAKEN outcomes a carrier can pass with a call (see attestation.py):
# A, B, C (verified, with the signer's attestation level), none, failed.
FULL_ATTESTATION = "A"
FAILED = "failed"

# z for a 95% Wilson interval.
WILSON_Z = 1.96
# Sweep a number a little after its crossing, so rounding cannot leave it due.
_CROSSING_MARGIN = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Policy:
    """The verdict settings, read once (see ``Settings`` for each field's meaning)."""

    category_weights: Mapping[str, float] = field(
        default_factory=lambda: {
            "scam": 1.0,
            "impersonation": 1.0,
            "spam_call": 0.5,
            "spam_sms": 0.5,
            "telemarketing": 0.25,
            "other": 0.5,
        }
    )
    warn_at: float = 2.5
    block_at: float = 9.0
    half_life_days: float = 90.0
    spoofed_protected_verdict: str = WARN

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            category_weights=settings.category_weight_map(),
            warn_at=settings.warn_threshold,
            block_at=settings.block_threshold,
            half_life_days=settings.half_life_days,
            spoofed_protected_verdict=settings.spoofed_protected_verdict,
        )

    def fingerprint(self) -> str:
        """Changes whenever a setting that moves stored verdicts changes."""
        weights = sorted(self.category_weights.items())
        text = json.dumps([weights, self.warn_at, self.block_at, self.half_life_days])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


DEFAULT_POLICY = Policy()


class Judgement(NamedTuple):
    """A verdict with the figures and reasons a carrier or an analyst can quote.

    A named tuple: made on every lookup of a reported number, and a frozen
    dataclass costs several times more to build.
    """

    verdict: str
    score: float
    confidence: float
    reasons: tuple[str, ...]
    heat: float = 0.0


NOT_REPORTED = Judgement(ALLOW, 0.0, 0.0, (NOT_REPORTED_REASON,))
_PROTECTED_UNREPORTED = Judgement(ALLOW, 0.0, 0.0, (PROTECTED_NUMBER,))


def wilson_lower_bound(agreeing: float) -> float:
    """95% Wilson lower bound of a proportion when all ``agreeing`` observations agree."""
    return agreeing / (agreeing + WILSON_Z**2) if agreeing > 0 else 0.0


def judge(
    record: NumberRecord | None,
    now: datetime,
    policy: Policy = DEFAULT_POLICY,
    *,
    protected: bool = False,
    attestation: str | None = None,
) -> Judgement:
    """The verdict for a number (``record`` None: nothing is known about it).

    ``attestation`` is given only for a call being set up; the stored verdict
    of a number is judged without it.
    """
    judgement = _judge_record(record, now, policy, protected)
    if attestation is None:
        return judgement
    return _with_attestation(judgement, record, protected, attestation, policy)


def _judge_record(
    record: NumberRecord | None, now: datetime, policy: Policy, protected: bool
) -> Judgement:
    if record is None:
        return _PROTECTED_UNREPORTED if protected else NOT_REPORTED
    heat = _round2(evidence.heat(record.heat_key, now))
    status = record.status
    if status == "allowlisted":
        return Judgement(ALLOW, 0.0, 1.0, (ALLOWLISTED,), heat)
    if status == "confirmed":
        if protected:
            return Judgement(WARN, 1.0, 1.0, (CONFIRMED, PROTECTED_NUMBER), heat)
        return Judgement(BLOCK, 1.0, 1.0, (CONFIRMED,), heat)
    people = 0.0
    weighted = 0.0
    factor = 0.0
    if record.weights:
        factor = evidence.decay(record.weights_at, now, policy.half_life_days)
        category_weights = policy.category_weights
        for category, weight in record.weights.items():
            people += weight
            weighted += weight * category_weights.get(category, 0.0)
        people *= factor
        weighted *= factor
    verdict = _by_evidence(weighted, policy)
    reasons: tuple[str, ...] = ()
    if status == "cleared":
        reasons = (CLEARED, REPORTED_AFTER_CLEARING) if people > 0 else (CLEARED,)
    if verdict == BLOCK:
        reasons += (REPORTED_BY_MANY,)
    elif verdict == WARN:
        reasons += (REPORTED_BY_SEVERAL,)
    elif factor > 0 and _by_evidence(weighted / factor, policy) != ALLOW:
        reasons += (OLD_REPORTS,)
    elif weighted > 0:
        reasons += (FEW_REPORTS,)
    elif not reasons:
        reasons = (NOT_REPORTED_REASON,) if record.reports == 0 else (FEW_REPORTS,)
    if protected:
        reasons += (PROTECTED_NUMBER,)
        if verdict == BLOCK:
            verdict = WARN
    score = _round3(min(1.0, weighted / policy.block_at))
    return Judgement(verdict, score, _round3(wilson_lower_bound(people)), reasons, heat)


def _round3(value: float) -> float:
    """``round(value, 3)`` for values in [0, 1], at a third of its cost."""
    return int(value * 1000.0 + 0.5) / 1000.0


def _round2(value: float) -> float:
    """``round(value, 2)`` for values of 0 or more."""
    return int(value * 100.0 + 0.5) / 100.0


def _by_evidence(weighted: float, policy: Policy) -> str:
    if weighted >= policy.block_at:
        return BLOCK
    if weighted >= policy.warn_at:
        return WARN
    return ALLOW


def _at_least(verdict: str, floor: str) -> str:
    return verdict if _RANK[verdict] >= _RANK[floor] else floor


def _with_attestation(
    judgement: Judgement,
    record: NumberRecord | None,
    protected: bool,
    attestation: str,
    policy: Policy,
) -> Judgement:
    """The judgement for one call, given how its caller ID was attested."""
    verdict = judgement.verdict
    reasons = list(judgement.reasons)
    if attestation == FAILED:
        reasons.append(FAILED_VALIDATION)
        if record is not None and judgement.score > 0 and record.status != "allowlisted":
            verdict = _at_least(verdict, WARN)
    if protected and attestation != FULL_ATTESTATION:
        # The "official is calling you" scam: only the signing carrier's full
        # attestation shows the caller may use this number.
        reasons.append(SPOOFED_PROTECTED_NUMBER)
        verdict = _at_least(verdict, policy.spoofed_protected_verdict)
    if verdict == judgement.verdict and len(reasons) == len(judgement.reasons):
        return judgement
    return judgement._replace(verdict=verdict, reasons=tuple(reasons))


def next_change(
    record: NumberRecord | None, now: datetime, policy: Policy, *, protected: bool = False
) -> datetime | None:
    """When decay alone will lower this number's verdict (None: it never will).

    Evidence decays as a whole (one half-life for every category), so the
    crossing of a threshold is solved in closed form:
    ``now + half_life * log2(evidence / threshold)``.
    """
    if record is None or record.status in ("confirmed", "allowlisted"):
        return None
    factor = evidence.decay(record.weights_at, now, policy.half_life_days)
    weighted = factor * sum(
        weight * policy.category_weights.get(category, 0.0)
        for category, weight in record.weights.items()
    )
    verdict = _by_evidence(weighted, policy)
    if verdict == BLOCK and not protected:
        threshold = policy.block_at
    elif verdict != ALLOW:
        threshold = policy.warn_at
    else:
        return None
    days = policy.half_life_days * math.log2(weighted / threshold)
    return now + timedelta(days=days) + _CROSSING_MARGIN
