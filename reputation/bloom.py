"""The in-memory Bloom filter that answers "never reported" without I/O.

It holds every number the database knows anything about (reports, statuses).
A negative answer is certain; a positive one sends the lookup on to the cache
and then to Postgres.

Hashing scheme (stable, documented so that other programs can rebuild it):
the key is the E.164 text as UTF-8; ``d = xxh3_128(key)``, ``h1 = d mod 2**64``,
``h2 = d >> 64``; for slice ``i`` in ``0..k-1`` the bit is
``i * m + (h1 + i * h2) mod m`` where ``m`` is the bits per slice (Kirsch and
Mitzenmacher double hashing).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator

import xxhash
from pybloom_live import BloomFilter

_MASK64 = (1 << 64) - 1
# Extra room given when a full filter is rebuilt, so that rebuilds stay rare.
GROWTH_FACTOR = 2


def double_hashes(num_slices: int, bits_per_slice: int) -> Callable[[str], Iterator[int]]:
    """The k bit positions (one per slice, before the slice offset) of a key."""
    digest = xxhash.xxh3_128_intdigest

    def make_hashes(key: str) -> Iterator[int]:
        d = digest(key.encode())
        h1, h2 = d & _MASK64, d >> 64
        for i in range(num_slices):
            yield (h1 + i * h2) % bits_per_slice

    return make_hashes


class NumberFilter:
    """A fixed-size Bloom filter that never refuses an add.

    pybloom-live's ``add`` raises once the filter holds ``capacity`` items. Past
    that point new numbers go to a small exact ``overflow`` set and
    ``needs_rebuild`` turns true; the owner then builds a larger filter from
    Postgres in the background and swaps it in.
    """

    def __init__(self, capacity: int, error_rate: float) -> None:
        self.capacity = max(1, capacity)
        self.error_rate = error_rate
        self.bloom = BloomFilter(self.capacity, error_rate)
        self.bloom.make_hashes = double_hashes(self.bloom.num_slices, self.bloom.bits_per_slice)
        self.overflow: set[str] = set()

    @classmethod
    def build(cls, numbers: Iterable[str], count: int, error_rate: float) -> NumberFilter:
        """A filter sized for ``count`` numbers with room to grow, holding ``numbers``."""
        number_filter = cls(max(count, 1) * GROWTH_FACTOR, error_rate)
        for number in numbers:
            number_filter.add(number)
        return number_filter

    def __contains__(self, number: str) -> bool:
        return number in self.bloom or (bool(self.overflow) and number in self.overflow)

    def add(self, number: str) -> None:
        if self.bloom.count < self.capacity:
            self.bloom.add(number)
        elif number not in self.bloom:
            self.overflow.add(number)

    def __len__(self) -> int:
        return int(self.bloom.count) + len(self.overflow)

    @property
    def needs_rebuild(self) -> bool:
        return bool(self.overflow)

    @property
    def num_bits(self) -> int:
        return int(self.bloom.num_bits)

    @property
    def num_slices(self) -> int:
        return int(self.bloom.num_slices)

    @property
    def bits_per_slice(self) -> int:
        return int(self.bloom.bits_per_slice)

    def fill_ratio(self) -> float:
        """Share of bits set; costs a pass over the bits, so call it at scrape time only."""
        return int(self.bloom.bitarray.count()) / self.num_bits

    def estimated_false_positive_rate(self) -> float:
        """Chance that an unknown number is answered "maybe" (from the bits actually set)."""
        # With one slice per hash function, a false positive needs a set bit in
        # every slice: about fill ** k.
        return float(math.pow(self.fill_ratio(), self.num_slices))
