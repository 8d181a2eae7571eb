"""The downloadable Bloom filter, read by a reader written from its documentation alone.

``read_filter`` and ``maybe_known`` below are what an app developer would
write in any language from the format described in ``reputation/bloom.py``:
they share no code with the service (only the xxh3 hash function itself).
"""

from __future__ import annotations

import json
import random
from typing import Any

import xxhash

from reputation.bloom import NumberFilter
from reputation.offline import BloomFile


def read_filter(data: bytes) -> tuple[dict[str, Any], bytes]:
    header_line, _, bits = data.partition(b"\n")
    header: dict[str, Any] = json.loads(header_line)
    return header, bits


def maybe_known(header: dict[str, Any], bits: bytes, e164: str) -> bool:
    k, m = header["slices"], header["bits_per_slice"]
    digest = int.from_bytes(xxhash.xxh3_128_digest(e164.encode("utf-8")), "big")
    h1, h2 = digest % 2**64, digest // 2**64
    for j in range(k):
        bit = j * m + (h1 + j * h2) % m
        if bits[bit // 8] & (1 << (bit % 8)) == 0:
            return False
    return True


def random_numbers(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"+84{rng.choice('35789')}{rng.randrange(10**8):08d}" for _ in range(count)]


def test_the_documented_format_answers_like_the_filter_on_100k_probes() -> None:
    number_filter = NumberFilter(20_000, 0.05)
    added = random_numbers(15_000, seed=1)
    for number in added:
        number_filter.add(number)
    header, bits = read_filter(number_filter.download())
    assert header["format"] == "reputation-bloom"
    assert header["version"] == 1
    assert header["hash"] == "xxh3_128"
    assert header["bit_order"] == "lsb0"
    assert header["bits"] == header["slices"] * header["bits_per_slice"]
    assert len(bits) == (header["bits"] + 7) // 8
    assert header["items"] == len(number_filter)
    probes = added[:10_000] + random_numbers(90_000, seed=2)
    server = [p in number_filter for p in probes]
    downloaded = [maybe_known(header, bits, p) for p in probes]
    assert downloaded == server
    assert all(downloaded[:10_000])
    # Enough false positives that agreeing on them means agreeing bit for bit.
    assert sum(downloaded[10_000:]) > 100
    client = BloomFile(number_filter.download())
    assert [p in client for p in probes] == server


def test_numbers_past_capacity_are_in_the_downloaded_filter() -> None:
    number_filter = NumberFilter(100, 0.01)
    added = random_numbers(300, seed=3)
    for number in added:
        number_filter.add(number)
    assert number_filter.overflow
    header, bits = read_filter(number_filter.download())
    assert all(maybe_known(header, bits, number) for number in added)


def test_the_file_is_made_again_only_when_the_filter_changed() -> None:
    number_filter = NumberFilter(1000, 0.01)
    number_filter.add("+84912345678")
    first = number_filter.download()
    assert number_filter.download() is first
    number_filter.add("+84912345678")
    assert number_filter.download() is first
    number_filter.add("+84912345679")
    second = number_filter.download()
    assert second != first
    header, bits = read_filter(second)
    assert maybe_known(header, bits, "+84912345679")
