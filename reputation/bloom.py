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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import xxhash
from bitarray import bitarray
from numpy.typing import NDArray
from pybloom_live import BloomFilter

_MASK64 = (1 << 64) - 1
# Name of the hashing scheme above and of the bit layout of ``to_bytes``: a
# stored filter is only loaded by code that hashes the same way.
HASHING = "xxh3_128-kirsch-mitzenmacher/bits-little-endian/v1"
# Extra room given when a full filter is rebuilt, so that rebuilds stay rare.
GROWTH_FACTOR = 2
# Version of the downloaded filter's layout (bump on any incompatible change).
FILE_FORMAT_VERSION = 1
# Keys set per numpy pass of a bulk add: bounds its temporary arrays (about
# 40 bytes per key and slice, 26 MB for 65,536 keys and 10 slices).
BULK_KEYS = 65_536
# Keys hashed per call of the C-level join: a thread building a filter gives
# the interpreter lock back between two of these (a few milliseconds each).
DIGEST_BATCH = 8_192
# Below this room before capacity, keys are added one by one (see ``add_many``).
MIN_BULK_ROOM = 1_024


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


def digests(keys: Sequence[bytes]) -> bytes:
    """The 16-byte ``xxh3_128`` digests of ``keys``, end to end (big-endian, as xxhash writes)."""
    digest = xxhash.xxh3_128_digest
    return b"".join(
        [
            b"".join(map(digest, keys[start : start + DIGEST_BATCH]))
            for start in range(0, len(keys), DIGEST_BATCH)
        ]
    )


@dataclass(frozen=True, slots=True)
class BitPositions:
    """The bits a batch of keys sets, worked out without the filter (so in any thread).

    Each position once, ascending: its byte, its bit within the byte, and the
    batch index of the first key that sets it.
    """

    keys: int
    byte: NDArray[np.uint64]
    mask: NDArray[np.uint8]
    setter: NDArray[np.uint32]


def bit_positions(key_digests: bytes, num_slices: int, bits_per_slice: int) -> BitPositions:
    """Where the keys of ``key_digests`` (see ``digests``) set their bits, in one numpy pass.

    The positions are those of ``double_hashes``: ``(h1 + i*h2) mod m`` in
    exact integers equals ``((h1 mod m) + i*(h2 mod m)) mod m``, computed here
    in uint64 without wrap-around (both terms are below ``m``, so each step
    adds less than ``m`` and subtracts ``m`` at most once).

    Every (key, slice) pair is sorted by bit position, then by key, so that the
    first pair at each position is the key that sets it first; the sort also
    makes the writes to the bit array nearly sequential. numpy releases the
    interpreter lock for most of this.
    """
    count = len(key_digests) // 16
    if count == 0:
        empty = np.empty(0, dtype=np.uint64)
        return BitPositions(0, empty, empty.astype(np.uint8), empty.astype(np.uint32))
    if count > 1 << 32:
        raise ValueError(f"{count} keys are too many for one pass")
    m, k = np.uint64(bits_per_slice), num_slices
    # A pair as one sortable uint64: global bit position, key index, slice index.
    slice_bits = max(1, (k - 1).bit_length())
    shift = max(1, (count - 1).bit_length()) + slice_bits
    if (k * bits_per_slice - 1).bit_length() + shift > 64:
        raise ValueError(f"{count} keys are too many for one pass over {k * bits_per_slice} bits")
    words = np.frombuffer(key_digests, dtype=">u8").reshape(count, 2)
    position = words[:, 1] % m  # h1 mod m: the digest's low 64 bits come second
    step = words[:, 0] % m  # h2 mod m
    pairs = np.empty(k * count, dtype=np.uint64)
    keys = np.arange(count, dtype=np.uint64) << np.uint64(slice_bits)
    for i in range(k):
        row = pairs[i * count : (i + 1) * count]
        np.add(position, np.uint64(i) * m, out=row)
        np.left_shift(row, np.uint64(shift), out=row)
        np.bitwise_or(row, keys, out=row)
        row |= np.uint64(i)
        position += step
        np.subtract(position, m, out=position, where=position >= m)
    pairs.sort()
    bit = pairs >> np.uint64(shift)
    first = np.empty(pairs.size, dtype=bool)
    first[0] = True
    np.not_equal(bit[1:], bit[:-1], out=first[1:])
    bit = bit[first]
    key_mask = np.uint64((1 << (shift - slice_bits)) - 1)
    setter = ((pairs[first] >> np.uint64(slice_bits)) & key_mask).astype(np.uint32)
    mask = np.left_shift(np.uint8(1), (bit & np.uint64(7)).astype(np.uint8))
    return BitPositions(count, bit >> np.uint64(3), mask, setter)


def set_positions(bits: bitarray, positions: BitPositions) -> int:
    """Set a batch's bits in ``bits``; how many of its keys ``add`` would have counted.

    ``add`` counts a key unless all its bits were set before it, by an earlier
    call or by a key earlier in the batch: so a key is counted when it is the
    first setter of a position that was still clear.
    """
    if positions.keys == 0:
        return 0
    byte, mask = positions.byte, positions.mask
    array = np.frombuffer(memoryview(bits), dtype=np.uint8)
    before = array[byte]
    counted = np.zeros(positions.keys, dtype=bool)
    counted[positions.setter[(before & mask) == 0]] = True
    # One fancy OR sets them all, except that of two positions in one byte
    # only the last write stays: those are ORed again, one by one.
    array[byte] = before | mask
    same_byte = byte[1:] == byte[:-1]
    if same_byte.any():
        shared = np.zeros(byte.size, dtype=bool)
        shared[1:] = same_byte
        shared[:-1] |= same_byte
        np.bitwise_or.at(array, byte[shared], mask[shared])
    del array  # the bit array cannot be resized while a view of it exists
    return int(np.count_nonzero(counted))


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

    def add_many(self, keys: Sequence[bytes]) -> None:
        """Add numbers given as UTF-8 E.164 bytes: the fast path of loading a whole set.

        Same bits, same item count and same overflow as ``add`` called on each
        key in turn (a key whose bits were all set already is not counted), at
        a small fraction of the cost: keys are hashed in one pass and their bit
        positions set with numpy (``bulk_add``). Keys go in batches no larger
        than the room left, so the filter cannot pass its capacity inside one;
        once it is nearly full the rest goes through ``add``, which knows about
        the overflow set.
        """
        start = 0
        while start < len(keys):
            room = self.capacity - self.bloom.count
            if room < MIN_BULK_ROOM:
                for key in keys[start:]:
                    self.add(key.decode())
                return
            batch = keys[start : start + min(room, BULK_KEYS)]
            positions = bit_positions(digests(batch), self.num_slices, self.bits_per_slice)
            self.bloom.count += set_positions(self.bloom.bitarray, positions)
            start += len(batch)

    def prepare(self, keys: Sequence[bytes]) -> list[BitPositions]:
        """The bit positions of ``keys`` for ``add_prepared``; reads nothing that changes.

        The costly part of ``add_many``: threads may prepare several batches at
        once while another adds the batches prepared before, in order.
        """
        return [
            bit_positions(
                digests(keys[start : start + BULK_KEYS]), self.num_slices, self.bits_per_slice
            )
            for start in range(0, len(keys), BULK_KEYS)
        ]

    def add_prepared(self, keys: Sequence[bytes], prepared: Sequence[BitPositions]) -> None:
        """``add_many(keys)``, given ``prepare(keys)``: same bits, count and overflow."""
        if self.capacity - self.bloom.count < max(len(keys), MIN_BULK_ROOM):
            self.add_many(keys)  # near capacity: the batches must follow the room left
            return
        for positions in prepared:
            self.bloom.count += set_positions(self.bloom.bitarray, positions)

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
