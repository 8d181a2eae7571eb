from __future__ import annotations

import xxhash

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
