from __future__ import annotations

import random

import pytest
import xxhash

from reputation import bloom
from reputation.bloom import NumberFilter


def numbers(count: int, start: int = 0) -> list[str]:
    return [f"+8491{i:07d}" for i in range(start, start + count)]


def test_no_false_negatives() -> None:
    number_filter = NumberFilter(10_000, 0.001)
    added = numbers(10_000)
    for number in added:
        number_filter.add(number)
    assert all(number in number_filter for number in added)


def test_false_positive_rate_near_design_at_capacity() -> None:
    number_filter = NumberFilter(20_000, 0.01)
    for number in numbers(20_000):
        number_filter.add(number)
    probes = numbers(50_000, start=1_000_000)
    rate = sum(number in number_filter for number in probes) / len(probes)
    assert rate < 0.02
    assert 0.001 < number_filter.estimated_false_positive_rate() < 0.02


def test_adding_past_capacity_never_raises_and_stays_exact() -> None:
    number_filter = NumberFilter(100, 0.001)
    added = numbers(500)
    for number in added:
        number_filter.add(number)
    assert number_filter.needs_rebuild
    assert 400 < len(number_filter) <= 500  # a saturated filter already "holds" some
    assert all(number in number_filter for number in added)


def test_build_sizes_the_filter_with_room() -> None:
    number_filter = NumberFilter.build(numbers(1000), 1000, 0.001)
    assert number_filter.capacity >= 2000
    assert not number_filter.needs_rebuild


def test_documented_hashing_scheme() -> None:
    """The bit positions follow the scheme in the module docstring, re-derived here."""
    number_filter = NumberFilter(1000, 0.001)
    number_filter.add("+84912345678")
    d = xxhash.xxh3_128_intdigest(b"+84912345678")
    h1, h2 = d & (2**64 - 1), d >> 64
    m = number_filter.bits_per_slice
    expected = {i * m + (h1 + i * h2) % m for i in range(number_filter.num_slices)}
    bits = number_filter.bloom.bitarray
    assert {i for i in range(len(bits)) if bits[i]} == expected


def test_inline_membership_agrees_with_pybloom_live() -> None:
    """The lookup's inline bit test answers exactly as the library's own membership."""
    number_filter = NumberFilter(5_000, 0.01)
    for number in numbers(5_000):
        number_filter.add(number)
    probes = numbers(5_000) + numbers(20_000, start=2_000_000)
    answers = [number in number_filter for number in probes]
    assert answers == [number in number_filter.bloom for number in probes]
    assert any(answers[5_000:])  # some false positives, so both branches are compared
    assert not all(answers[5_000:])


def odd_keys(count: int, seed: int) -> list[str]:
    """Keys of every length from 0 to 40 characters, some not ASCII, a few repeated."""
    rng = random.Random(seed)
    alphabet = "+0123456789 ()-.số điện thoại☎\u200b"
    keys = ["".join(rng.choices(alphabet, k=rng.randrange(41))) for _ in range(count)]
    return keys + rng.sample(keys, min(len(keys), 50))


def one_by_one(capacity: int, error_rate: float, keys: list[str]) -> NumberFilter:
    number_filter = NumberFilter(capacity, error_rate)
    for key in keys:
        number_filter.add(key)
    return number_filter


@pytest.mark.parametrize(
    ("capacity", "error_rate", "keys"),
    [
        (10, 0.001, numbers(7)),
        (1_000, 0.001, numbers(1_000)),
        (50_000, 0.001, numbers(30_000, start=5_000_000)),
        (3_000, 0.01, odd_keys(2_000, seed=1)),
        # Dense: many keys find all their bits set already and are not counted.
        (40_000, 0.3, odd_keys(39_000, seed=2)),
        # Past capacity: the rest goes to the overflow set.
        (5_000, 0.01, numbers(12_000)),
        (2_000, 0.2, odd_keys(6_000, seed=3)),
    ],
)
@pytest.mark.parametrize("batch", [bloom.BULK_KEYS, 1_500])
def test_bulk_add_matches_adding_one_by_one(
    capacity: int, error_rate: float, keys: list[str], batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same bits, same item count, same overflow set: a bulk-built filter is the same filter."""
    monkeypatch.setattr(bloom, "BULK_KEYS", batch)
    expected = one_by_one(capacity, error_rate, keys)
    encoded = [key.encode() for key in keys]
    bulk = NumberFilter(capacity, error_rate)
    bulk.add_many(encoded)
    prepared = NumberFilter(capacity, error_rate)
    prepared.add_prepared(encoded, prepared.prepare(encoded))
    for built in (bulk, prepared):
        assert built.bloom.bitarray == expected.bloom.bitarray
        assert built.bloom.count == expected.bloom.count
        assert built.overflow == expected.overflow
        assert len(built) == len(expected)
        assert built.needs_rebuild == expected.needs_rebuild


def test_the_dense_cases_do_skip_keys_already_present() -> None:
    """The comparison above covers keys ``add`` does not count, and an overflow."""
    dense = one_by_one(40_000, 0.3, odd_keys(39_000, seed=2))
    assert len(dense) < len(set(odd_keys(39_000, seed=2))) - 1_000
    assert one_by_one(5_000, 0.01, numbers(12_000)).overflow


def test_bulk_add_onto_a_filled_filter_and_in_pieces() -> None:
    """Bits already set (by ``add``, or an earlier bulk add) count as present."""
    keys = [key.encode() for key in odd_keys(20_000, seed=4)]
    expected = one_by_one(30_000, 0.05, [key.decode() for key in keys])
    pieces = NumberFilter(30_000, 0.05)
    for key in keys[:3_000]:
        pieces.add(key.decode())
    for start in range(3_000, len(keys), 7_001):
        piece = keys[start : start + 7_001]
        if start % 2:
            pieces.add_many(piece)
        else:
            pieces.add_prepared(piece, pieces.prepare(piece))
    assert pieces.bloom.bitarray == expected.bloom.bitarray
    assert len(pieces) == len(expected)


def test_bulk_add_of_nothing() -> None:
    number_filter = NumberFilter(100, 0.01)
    number_filter.add_many([])
    assert len(number_filter) == 0
    assert not number_filter.bloom.bitarray.any()
