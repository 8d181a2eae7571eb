"""The verdict policy, table by table: evidence, statuses, protection, attestation, decay."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from reputation.constants import CATEGORIES
from reputation.records import NumberRecord
from reputation.settings import Settings
from reputation.verdict import (
    ALLOW,
    BLOCK,
    DEFAULT_POLICY,
    REASONS,
    WARN,
    Policy,
    judge,
    next_change,
    wilson_lower_bound,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def record(
    weights: dict[str, float] | None = None,
    *,
    age_days: float = 0.0,
    status: str = "reported",
    reports: int | None = None,
) -> NumberRecord:
    """A number whose evidence (distinct reporters per category) was fresh ``age_days`` ago."""
    weights = weights or {}
    count = reports if reports is not None else math.ceil(sum(weights.values()))
    at = NOW - timedelta(days=age_days)
    return NumberRecord(
        e164="+84912345678",
        status=status,
        reports=count,
        reporters=count,
        categories={c: math.ceil(w) for c, w in weights.items()},
        first_reported_at=at if count else None,
        last_reported_at=at if count else None,
        weights=weights,
        weights_at=at if weights else None,
        heat_key=-math.inf,
    )


# (case, record, protected, verdict, reasons)
JUDGEMENTS = [
    ("nothing known", None, False, ALLOW, ("not_reported",)),
    ("one scam reporter", record({"scam": 1}), False, ALLOW, ("few_reports",)),
    ("two scam reporters", record({"scam": 2}), False, ALLOW, ("few_reports",)),
    ("three scam reporters", record({"scam": 3}), False, WARN, ("reported_by_several",)),
    ("three, a month ago", record({"scam": 3}, age_days=30), False, ALLOW, ("old_reports",)),
    ("nine scam reporters", record({"scam": 9}), False, BLOCK, ("reported_by_many",)),
    ("ten scam reporters", record({"scam": 10}), False, BLOCK, ("reported_by_many",)),
    ("ten, 13 days ago", record({"scam": 10}, age_days=13), False, BLOCK, ("reported_by_many",)),
    ("ten, 14 days ago", record({"scam": 10}, age_days=14), False, WARN, ("reported_by_several",)),
    ("ten, a year ago", record({"scam": 10}, age_days=365), False, ALLOW, ("old_reports",)),
    ("thirty, two years ago", record({"scam": 30}, age_days=730), False, ALLOW, ("old_reports",)),
    ("mixed scam + impersonation", record({"scam": 2, "impersonation": 1}), False, WARN, None),
    ("four spam callers", record({"spam_call": 4}), False, ALLOW, ("few_reports",)),
    ("five spam callers", record({"spam_call": 5}), False, WARN, None),
    ("nine telemarketing", record({"telemarketing": 9}), False, ALLOW, None),
    ("ten telemarketing", record({"telemarketing": 10}), False, WARN, None),
    ("36 telemarketing", record({"telemarketing": 36}), False, BLOCK, None),
    ("reports that never counted", record(reports=40), False, ALLOW, ("few_reports",)),
    ("confirmed, no reports", record(status="confirmed"), False, BLOCK, ("confirmed",)),
    ("confirmed, old reports", record({"scam": 1}, age_days=900, status="confirmed"), False,
     BLOCK, ("confirmed",)),
    ("allowlisted, many reports", record({"scam": 50}, status="allowlisted"), False, ALLOW,
     ("allowlisted",)),
    ("cleared, nobody new", record(status="cleared", reports=30), False, ALLOW, ("cleared",)),
    ("cleared, one new reporter", record({"scam": 1}, status="cleared"), False, ALLOW,
     ("cleared", "reported_after_clearing", "few_reports")),
    ("cleared, three new reporters", record({"scam": 3}, status="cleared"), False, WARN,
     ("cleared", "reported_after_clearing", "reported_by_several")),
    ("protected, 20 reporters", record({"scam": 20}), True, WARN,
     ("reported_by_many", "protected_number")),
    ("protected, three reporters", record({"scam": 3}), True, WARN,
     ("reported_by_several", "protected_number")),
    ("protected, confirmed", record(status="confirmed"), True, WARN,
     ("confirmed", "protected_number")),
    ("protected, never reported", None, True, ALLOW, ("protected_number",)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "number", "protected", "verdict", "reasons"),
    JUDGEMENTS,
    ids=[case[0] for case in JUDGEMENTS],
)
def test_judgement(
    case: str,
    number: NumberRecord | None,
    protected: bool,
    verdict: str,
    reasons: tuple[str, ...] | None,
) -> None:
    judgement = judge(number, NOW, protected=protected)
    assert judgement.verdict == verdict
    if reasons is not None:
        assert judgement.reasons == reasons
    assert set(judgement.reasons) <= set(REASONS)
    assert 0.0 <= judgement.score <= 1.0
    assert 0.0 <= judgement.confidence <= 1.0


@pytest.mark.parametrize("category", CATEGORIES)
@pytest.mark.parametrize("age_days", [0.0, 1.0, 400.0])
def test_one_reporter_alone_never_gets_past_allow(category: str, age_days: float) -> None:
    assert judge(record({category: 1}, age_days=age_days), NOW).verdict == ALLOW


def test_defaults_three_recent_scam_reporters_warn_ten_block() -> None:
    for age_days in (0.0, 1.0, 7.0):
        assert judge(record({"scam": 3}, age_days=age_days), NOW).verdict in (WARN, BLOCK)
        assert judge(record({"scam": 10}, age_days=age_days), NOW).verdict == BLOCK


def test_score_and_confidence() -> None:
    one = judge(record({"scam": 1}), NOW)
    assert one.score == round(1 / 9, 3)
    assert one.confidence == pytest.approx(1 / (1 + 1.96**2), abs=1e-3)
    ten = judge(record({"scam": 10}), NOW)
    assert ten.score == 1.0
    assert ten.confidence == pytest.approx(10 / (10 + 1.96**2), abs=1e-3)
    # Confidence counts people whatever their category; the score weighs them.
    spam = judge(record({"telemarketing": 10}), NOW)
    assert spam.confidence == ten.confidence
    assert spam.score < ten.score
    assert judge(record(status="confirmed"), NOW).confidence == 1.0
    assert judge(None, NOW).confidence == 0.0


def test_wilson_lower_bound_grows_with_agreeing_reporters() -> None:
    values = [wilson_lower_bound(n) for n in (0, 1, 3, 10, 30, 100)]
    assert values == sorted(values)
    assert values[0] == 0.0
    assert values[-1] < 1.0


# (attestation, protected, number, verdict, added reasons)
ATTESTED_CALLS = [
    ("A", True, None, ALLOW, ()),
    ("B", True, None, WARN, ("spoofed_protected_number",)),
    ("C", True, None, WARN, ("spoofed_protected_number",)),
    ("none", True, None, WARN, ("spoofed_protected_number",)),
    ("failed", True, None, WARN, ("failed_validation", "spoofed_protected_number")),
    ("A", True, record({"scam": 20}), WARN, ()),
    ("C", True, record({"scam": 20}), WARN, ("spoofed_protected_number",)),
    ("C", False, None, ALLOW, ()),
    ("none", False, record({"scam": 1}), ALLOW, ()),
    ("failed", False, None, ALLOW, ("failed_validation",)),
    ("failed", False, record({"scam": 1}), WARN, ("failed_validation",)),
    ("failed", False, record({"scam": 10}), BLOCK, ("failed_validation",)),
    ("failed", False, record({"scam": 9}, status="allowlisted"), ALLOW, ("failed_validation",)),
    ("failed", False, record(status="cleared", reports=5), ALLOW, ("failed_validation",)),
]


@pytest.mark.parametrize(("attestation", "protected", "number", "verdict", "added"), ATTESTED_CALLS)
def test_attestation(
    attestation: str,
    protected: bool,
    number: NumberRecord | None,
    verdict: str,
    added: tuple[str, ...],
) -> None:
    plain = judge(number, NOW, protected=protected)
    call = judge(number, NOW, protected=protected, attestation=attestation)
    assert call.verdict == verdict
    assert call.reasons == plain.reasons + added
    assert call.score == plain.score


def test_spoofed_protected_number_can_be_blocked_by_setting() -> None:
    policy = replace(DEFAULT_POLICY, spoofed_protected_verdict=BLOCK)
    assert judge(None, NOW, policy, protected=True, attestation="C").verdict == BLOCK
    assert judge(None, NOW, policy, protected=True, attestation="A").verdict == ALLOW


# (record, protected, days until the verdict is lowered, or None)
CHANGES = [
    (record({"scam": 10}), False, 90 * math.log2(10 / 9)),
    (record({"scam": 10}), True, 90 * math.log2(10 / 2.5)),  # capped at warn: next is allow
    (record({"scam": 3}), False, 90 * math.log2(3 / 2.5)),
    (record({"scam": 3}, age_days=10), False, 90 * math.log2(3 / 2.5) - 10),
    (record({"scam": 2}), False, None),
    (record(status="confirmed"), False, None),
    (record({"scam": 50}, status="allowlisted"), False, None),
    (record(status="cleared", reports=9), False, None),
    (None, False, None),
]


@pytest.mark.parametrize(("number", "protected", "days"), CHANGES)
def test_next_change(number: NumberRecord | None, protected: bool, days: float | None) -> None:
    when = next_change(number, NOW, DEFAULT_POLICY, protected=protected)
    if days is None:
        assert when is None
        return
    assert when is not None
    assert (when - NOW).total_seconds() == pytest.approx(days * 86400 + 1, abs=1e-3)
    before = judge(number, when - timedelta(seconds=2), protected=protected).verdict
    after = judge(number, when, protected=protected).verdict
    assert before == judge(number, NOW, protected=protected).verdict
    assert after != before


def test_a_year_of_silence_drifts_back_to_allow_through_each_threshold() -> None:
    number = record({"scam": 40})
    verdicts = []
    moment: datetime | None = NOW
    while moment is not None:
        verdicts.append(judge(number, moment).verdict)
        moment = next_change(number, moment, DEFAULT_POLICY)
    assert verdicts == [BLOCK, WARN, ALLOW]
    assert judge(number, NOW + timedelta(days=365)).verdict in (WARN, ALLOW)
    assert judge(record({"scam": 10}), NOW + timedelta(days=365)).verdict == ALLOW


def test_policy_from_settings_and_its_fingerprint() -> None:
    settings = Settings(category_weights="telemarketing=0", block_threshold=20)
    policy = Policy.from_settings(settings)
    assert policy.category_weights["telemarketing"] == 0.0
    assert policy.category_weights["scam"] == 1.0
    assert judge(record({"telemarketing": 500}), NOW, policy).verdict == ALLOW
    assert judge(record({"scam": 12}), NOW, policy).verdict == WARN
    assert Policy.from_settings(Settings()).fingerprint() == DEFAULT_POLICY.fingerprint()
    assert policy.fingerprint() != DEFAULT_POLICY.fingerprint()
    # The spoofing verdict does not move stored verdicts: same fingerprint.
    spoof = Policy.from_settings(Settings(spoofed_protected_verdict="block"))
    assert spoof.fingerprint() == DEFAULT_POLICY.fingerprint()


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"category_weights": "scam=2.5"}, "REPUTATION_CATEGORY_WEIGHTS"),
        ({"category_weights": "fraud=1"}, "REPUTATION_CATEGORY_WEIGHTS"),
        ({"category_weights": "scam=-1"}, "REPUTATION_CATEGORY_WEIGHTS"),
        ({"category_weights": "scam"}, "REPUTATION_CATEGORY_WEIGHTS"),
        ({"warn_threshold": 10.0}, "REPUTATION_WARN_THRESHOLD"),
        ({"half_life_days": 0.0}, "REPUTATION_HALF_LIFE_DAYS"),
        ({"reporter_daily_cap": 0}, "REPUTATION_REPORTER_DAILY_CAP"),
        ({"spoofed_protected_verdict": "allow"}, "REPUTATION_SPOOFED_PROTECTED_VERDICT"),
        ({"reporter_day_utc_offset": 15.0}, "REPUTATION_REPORTER_DAY_UTC_OFFSET"),
    ],
)
def test_settings_refuse_a_policy_that_makes_no_sense(
    overrides: dict[str, object], variable: str
) -> None:
    with pytest.raises(ValueError, match=variable):
        Settings(**overrides)  # type: ignore[arg-type]
