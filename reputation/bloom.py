"""The in-memory Bloom filter that answers "never reported" without I/O.

It holds every number the database knows anything about (reports, statuses).
A negative answer is certain; a positive one sends the lookup on to the cache
and then to Postgres.

Hashing scheme (stable, documented so that other programs can rebuild it):
the key is the E.164 text as UTF-8; ``d = xxh3_128(key)``, ``h1 = d mod 2**64``,
``h2 = d >> 64``; for slice ``i`` in ``0..k-1`` the bit is
``i * m + (h1 + i * h2) mod m`` where ``m`` is the bits per slice (Kirsch and
Mitzenmacher double hashing; ``h1 + i * h2`` in exact integer arithmetic, no
64-bit wrap-around).

Downloaded filter (``GET /v1/bloom``, ``NumberFilter.download``): one line of
JSON with the parameters, a newline (``0x0a``), then the bit array:

    {"format": "reputation-bloom", "version": 1, "hash": "xxh3_128",
     "scheme": "double-hashing-sliced", "slices": k, "bits_per_slice": m,
     "bits": k*m, "bit_order": "lsb0", "items": n, ...}\n<ceil(k*m/8) bytes>

Bit ``b`` of the filter is ``(byte[b >> 3] >> (b & 7)) & 1`` (least
significant bit first, as pybloom-live's little-endian ``bitarray`` keeps
it); the unused high bits of the last byte are zero. A number is possibly
known when all ``k`` of its bits are 1, and certainly unknown otherwise.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator

import xxhash
from bitarray import bitarray
from pybloom_live import BloomFilter

_MASK64 = (1 << 64) - 1
# Name of the hashing scheme above and of the bit layout of ``to_bytes``: a
# stored filter is only loaded by code that hashes the same way.
HASHING = "xxh3_128-kirsch-mitzenmacher/bits-little-endian/v1"
# Extra room given when a full filter is rebuilt, so that rebuilds stay rare.
GROWTH_FACTOR = 2
# Version of the downloaded filter's layout (bump on any incompatible change).
FILE_FORMAT_VERSION = 1


_digest = xxhash.xxh3_128_intdigest


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
        # The downloadable form, and the item count it was made at.
        self._file: tuple[int, bytes] | None = None

    @classmethod
    def build(cls, numbers: Iterable[str], count: int, error_rate: float) -> NumberFilter:
        """A filter sized for ``count`` numbers with room to grow, holding ``numbers``."""
        number_filter = cls(max(count, 1) * GROWTH_FACTOR, error_rate)
        for number in numbers:
            number_filter.add(number)
        return number_filter

    @classmethod
    def restore(cls, capacity: int, error_rate: float, items: int, bits: bytes) -> NumberFilter:
        """A filter from the bytes of ``to_bytes`` (a stored snapshot)."""
        number_filter = cls(capacity, error_rate)
        bloom = number_filter.bloom
        if len(bits) != (bloom.num_bits + 7) // 8:
            raise ValueError(
                f"a filter of capacity {capacity} at {error_rate} has {bloom.num_bits} bits, "
                f"not {len(bits)} bytes"
            )
        restored = bitarray(endian=bloom.bitarray.endian)
        restored.frombytes(bits)
        del restored[bloom.num_bits :]
        bloom.bitarray = restored
        bloom.count = items
        return number_filter

    def to_bytes(self) -> bytes:
        """The filter's bits, slice after slice, bit ``i`` of a byte being ``1 << i``."""
        if self.overflow:
            raise ValueError("a filter past its capacity is rebuilt, not stored")
        return bytes(self.bloom.bitarray.tobytes())

    def add_many(self, keys: Iterable[bytes]) -> None:
        """Add numbers given as UTF-8 E.164 bytes: the fast path of loading a whole set.

        Same bits as ``add``, about twice as fast: ``(h1 + i*h2) mod m`` is
        walked as ``a, a+b, a+2b, ...`` with ``a = h1 mod m``, ``b = h2 mod m``,
        so that every step is a small-integer addition. Every key is counted
        (keys are assumed distinct, as the primary key of ``numbers`` makes them).
        """
        bloom = self.bloom
        bits = bloom.bitarray
        m = bloom.bits_per_slice
        slice_offsets = range(0, bloom.num_slices * m, m)
        digest = xxhash.xxh3_128_intdigest
        added = 0
        room = self.capacity - bloom.count
        for key in keys:
            if added >= room:
                self.add(key.decode())
                continue
            d = digest(key)
            a = (d & _MASK64) % m
            b = (d >> 64) % m
            for offset in slice_offsets:
                bits[offset + a] = 1
                a += b
                if a >= m:
                    a -= m
            added += 1
        bloom.count += added

    def __contains__(self, number: str) -> bool:
        # The bit positions of ``double_hashes``, tested inline: a lookup's most
        # frequent call, and the generator and pybloom-live's loop around it
        # cost more than the hashing itself.
        bloom = self.bloom
        bits = bloom.bitarray
        m = bloom.bits_per_slice
        d = _digest(number.encode())
        h1, h2 = d & _MASK64, d >> 64
        offset = 0
        for i in range(bloom.num_slices):
            if not bits[offset + (h1 + i * h2) % m]:
                return bool(self.overflow) and number in self.overflow
            offset += m
        return True

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

    def download(self) -> bytes:
        """The filter as clients download it (format in the module docstring).

        Numbers in the overflow set have their bits set in the copy, so the
        downloaded filter never misses a number the node knows; until the
        rebuild, it is only a little fuller than the node's own.
        """
        items = len(self)
        if self._file is not None and self._file[0] == items:
            return self._file[1]
        bits = self.bloom.bitarray
        if self.overflow:
            bits = bits.copy()
            hashes = double_hashes(self.num_slices, self.bits_per_slice)
            for number in self.overflow:
                for i, position in enumerate(hashes(number)):
                    bits[i * self.bits_per_slice + position] = True
        header = {
            "format": "reputation-bloom",
            "version": FILE_FORMAT_VERSION,
            "hash": "xxh3_128",
            "scheme": "double-hashing-sliced",
            "slices": self.num_slices,
            "bits_per_slice": self.bits_per_slice,
            "bits": self.num_bits,
            "bit_order": "lsb0",
            "items": items,
            "capacity": self.capacity,
            "error_rate": self.error_rate,
        }
        encoded: bytes = json.dumps(header).encode() + b"\n" + bits.tobytes()
        self._file = (items, encoded)
        return encoded
