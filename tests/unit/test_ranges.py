"""The hash-prefix index: what a range holds, how it is padded, which prefixes are read."""

from __future__ import annotations

import hashlib
import json
import random

import pytest

from reputation.constants import RANGE_MIN_ENTRIES
from reputation.listing import ListEntry
from reputation.ranges import RangeIndex, parse_prefix, recommended_prefix_length

CATEGORIES = ["scam", "impersonation", "spam_call", "spam_sms", "telemarketing", "other", None]


def sha(e164: str) -> str:
    return hashlib.sha256(e164.encode()).hexdigest()


def entry(e164: str, rng: random.Random) -> ListEntry:
    return ListEntry(
        e164,
        rng.choice(["warn", "block"]),
        rng.choice(CATEGORIES),
        rng.choice([0, 1, 2, 5, 10, 20, 50, 100]),
        rng.choice([1, 2, 5, 10, 20, 50, 100]),
    )


def numbers(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [f"+849{rng.randrange(10**8):08d}" for _ in range(count)]


def decode(index: RangeIndex, prefix: str) -> dict[str, object]:
    body: dict[str, object] = json.loads(index.answer(prefix).body)
    return body


def test_a_range_lists_exactly_the_numbers_whose_hash_starts_with_the_prefix() -> None:
    rng = random.Random(1)
    index = RangeIndex()
    listed = {e164: entry(e164, rng) for e164 in numbers(3000)}
    index.load(listed.values())
    assert len(index) == len(listed)
    hashes = {e164: sha(e164) for e164 in listed}
    for probe in numbers(50, seed=2) + list(listed)[:50]:
        for length in (3, 4, 5):
            prefix = sha(probe)[:length]
            body = decode(index, prefix)
            assert body["prefix"] == prefix
            expected = sorted((h[length:], e) for e, h in hashes.items() if h.startswith(prefix))
            got = body["entries"]
            assert isinstance(got, list)
            assert [g["suffix"] for g in got] == [suffix for suffix, _ in expected]
            for g, (_, e164) in zip(got, expected, strict=True):
                want = listed[e164].to_json()
                del want["number"]
                assert {k: v for k, v in g.items() if k != "suffix"} == want


def test_apply_replaces_and_removes_entries() -> None:
    index = RangeIndex()
    e164 = "+84912345678"
    index.apply(e164, ListEntry(e164, "warn", "scam", 2, 2))
    index.apply(e164, ListEntry(e164, "block", "scam", 10, 10))
    assert len(index) == 1
    (only,) = decode(index, sha(e164)[:5])["entries"]  # type: ignore[misc]
    assert only["verdict"] == "block"
    assert only["suffix"] == sha(e164)[5:]
    index.apply(e164, None)
    index.apply(e164, None)  # removing what is not there changes nothing
    assert len(index) == 0
    assert decode(index, sha(e164)[:5])["entries"] == []


def test_answers_of_a_size_class_are_exactly_as_long() -> None:
    rng = random.Random(3)
    index = RangeIndex()
    # The range "abc" holds 0 to RANGE_MIN_ENTRIES entries as numbers are added.
    sizes = {len(index.answer("abc").body)}
    candidates = (n for n in numbers(10**6, seed=4) if sha(n).startswith("abc"))
    for _ in range(RANGE_MIN_ENTRIES):
        e164 = next(candidates)
        index.apply(e164, entry(e164, rng))
        sizes.add(len(index.answer("abc").body))
        sizes.add(len(index.answer("abd").body))  # an empty neighbour
    assert len(sizes) == 1
    e164 = next(candidates)
    index.apply(e164, entry(e164, rng))  # one more: the next size class
    assert len(index.answer("abc").body) > sizes.pop()


def test_etag_follows_the_content() -> None:
    index = RangeIndex()
    e164 = "+84912345678"
    prefix = sha(e164)[:4]
    empty = index.answer(prefix).etag
    index.apply(e164, ListEntry(e164, "warn", "scam", 2, 2))
    listed = index.answer(prefix).etag
    assert listed != empty
    assert index.answer(prefix).etag == listed
    index.apply(e164, None)
    assert index.answer(prefix).etag == empty


@pytest.mark.parametrize(
    ("text", "prefix"),
    [("abc", "abc"), ("ABCD", "abcd"), ("0f9e8", "0f9e8"), ("ab", None), ("abcdef", None),
     ("abcg", None), ("", None), ("12 4", None), ("١٢٣", None), ("abc\n", None)],
)  # fmt: skip
def test_prefixes_are_3_to_5_hex_characters(text: str, prefix: str | None) -> None:
    assert parse_prefix(text) == prefix


@pytest.mark.parametrize(
    ("listed", "length"),
    [(0, 3), (100_000, 3), (1_000_000, 3), (2_097_152, 4), (10_000_000, 4), (40_000_000, 5)],
)
def test_recommended_prefix_keeps_a_few_dozen_entries_per_range(listed: int, length: int) -> None:
    assert recommended_prefix_length(listed) == length


def test_loading_at_once_equals_applying_one_by_one() -> None:
    rng = random.Random(5)
    first = {e164: entry(e164, rng) for e164 in numbers(5000, seed=6)}
    later = {e164: entry(e164, rng) for e164 in [*list(first)[:1000], *numbers(3000, seed=7)]}
    one_by_one, at_once = RangeIndex(), RangeIndex()
    for batch in (first, later):
        for e164, listed in batch.items():
            one_by_one.apply(e164, listed)
        at_once.load([*batch.values(), *list(batch.values())[:10]])  # repeats: the last wins
    assert len(at_once) == len(one_by_one) == len(first | later)
    for prefix in {sha(e164)[:3] for e164 in first | later}:
        assert at_once.answer(prefix) == one_by_one.answer(prefix)


def test_kept_answers_follow_every_change() -> None:
    rng = random.Random(8)
    index = RangeIndex()
    index.load(entry(e164, rng) for e164 in numbers(2000, seed=9))
    e164 = numbers(1, seed=10)[0]
    prefixes = [sha(e164)[:length] for length in (3, 4, 5)]
    before = [index.answer(prefix) for prefix in prefixes]
    assert [index.answer(prefix) for prefix in prefixes] == before  # served again as kept
    index.apply(e164, ListEntry(e164, "block", "scam", 5, 5))
    after = [decode(index, prefix)["entries"] for prefix in prefixes]
    for found, length in zip(after, (3, 4, 5), strict=True):
        assert isinstance(found, list)
        assert sha(e164)[length:] in [f["suffix"] for f in found]
    index.load([ListEntry(e164, "warn", "scam", 5, 5)])
    assert {f["verdict"] for f in decode(index, prefixes[0])["entries"]  # type: ignore[union-attr]
            if f["suffix"] == sha(e164)[3:]} == {"warn"}  # fmt: skip
