"""What the published list says about a number: rounding, category, who is listed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from reputation.listing import (
    ListEntry,
    ListVersion,
    list_entry,
    published_category,
    published_count,
)
from reputation.records import NumberRecord


@pytest.mark.parametrize(
    ("count", "published"),
    [
        (0, 0),
        (1, 1),
        (2, 2),
        (4, 2),
        (5, 5),
        (9, 5),
        (10, 10),
        (19, 10),
        (20, 20),
        (49, 20),
        (50, 50),
        (99, 50),
        (100, 100),
        (12_345, 100),
    ],
)
def test_counts_are_rounded_down_to_1_2_5_steps(count: int, published: int) -> None:
    assert published_count(count) == published


def test_category_is_the_most_reported_and_ties_go_to_the_first_name() -> None:
    assert published_category({}) is None
    assert published_category({"scam": 1}) == "scam"
    assert published_category({"spam_call": 3, "scam": 2, "other": 3}) == "other"
    assert published_category({"telemarketing": 1, "impersonation": 5}) == "impersonation"


def record(reports: int, reporters: int, categories: dict[str, int]) -> NumberRecord:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    return NumberRecord(
        "+84912345678", "reported", reports, reporters, categories, moment, moment, {}, None, 0.0
    )


def test_only_warn_and_block_are_listed() -> None:
    number = record(7, 4, {"scam": 6, "spam_call": 1})
    assert list_entry(number, "allow") is None
    assert list_entry(None, "block") is None
    assert list_entry(number, "warn") == ListEntry("+84912345678", "warn", "scam", 5, 2)
    assert list_entry(number, "block") == ListEntry("+84912345678", "block", "scam", 5, 2)
    assert ListEntry("+84912345678", "warn", None, 0, 0).to_json() == {
        "number": "+84912345678",
        "verdict": "warn",
        "category": None,
        "reports": 0,
        "reporters": 0,
    }


@pytest.mark.parametrize(
    "text",
    ["1:1:", "15381:15390:", "15381:15390:15381,15384", "10:20:19", "5:9223372036854775807:"],
)
def test_versions_read_back_as_written(text: str) -> None:
    version = ListVersion.parse(text)
    assert version is not None
    assert str(version) == text


def test_version_parts() -> None:
    assert ListVersion.parse("10:20:12,15") == ListVersion(10, 20, (12, 15))
