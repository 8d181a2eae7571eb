"""The client side of the published list: private range lookups and an offline copy.

Pure code, no I/O: ``reputation.client`` fetches, this module reads what was
fetched. It is written from the documented formats only (the range answer,
the export's JSON lines, the Bloom filter file), as an app in another
language would be: it shares no code with the server's side of them (only
the number normaliser, so that a number is looked up as the service keys it).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import orjson
import xxhash

from reputation.normalize import normalize

_MASK64 = (1 << 64) - 1
# Range answers a client keeps (each a few KB); 4096 covers every 3-character prefix.
RANGE_CACHE_SIZE = 4096


def number_hash(e164: str) -> str:
    """Lowercase hex SHA-256 of the E.164 text with its '+', as the service hashes it."""
    return hashlib.sha256(e164.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ListedAnswer:
    """What the published list says about a number: listed (warn/block) or not (allow).

    ``known`` (offline copies with a Bloom filter only): ``False`` when the
    number was certainly never reported, ``True`` when it may have been
    (ask the service for details), ``None`` without a filter.
    """

    number: str
    verdict: str
    listed: bool
    category: str | None = None
    reports: int = 0
    reporters: int = 0
    known: bool | None = None

    @classmethod
    def from_entry(cls, e164: str, entry: Mapping[str, Any] | None) -> ListedAnswer:
        if entry is None:
            return cls(e164, "allow", listed=False)
        return cls(
            e164,
            entry["verdict"],
            listed=True,
            category=entry["category"],
            reports=entry["reports"],
            reporters=entry["reporters"],
        )


def find_in_range(body: Mapping[str, Any], full_hash: str) -> Mapping[str, Any] | None:
    """The entry of the number with this hash in a range answer, if it is listed."""
    suffix = full_hash[len(body["prefix"]) :]
    for entry in body["entries"]:
        if entry["suffix"] == suffix:
            found: Mapping[str, Any] = entry
            return found
    return None


def max_age(cache_control: str | None) -> float:
    """Seconds an answer may be reused, from its ``Cache-Control`` header (0 if not said)."""
    for directive in (cache_control or "").split(","):
        name, _, value = directive.strip().partition("=")
        if name.lower() == "max-age" and value.isdigit():
            return float(value)
    return 0.0


@dataclass(slots=True)
class CachedRange:
    body: Mapping[str, Any]
    etag: str | None
    expires: float


class RangeCache:
    """Range answers kept as long as the service allows, then revalidated by ETag."""

    def __init__(
        self, size: int = RANGE_CACHE_SIZE, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.size = size
        self.clock = clock
        self._ranges: OrderedDict[str, CachedRange] = OrderedDict()

    def fresh(self, prefix: str) -> Mapping[str, Any] | None:
        cached = self._ranges.get(prefix)
        if cached is None or cached.expires < self.clock():
            return None
        self._ranges.move_to_end(prefix)
        return cached.body

    def etag(self, prefix: str) -> str | None:
        cached = self._ranges.get(prefix)
        return cached.etag if cached else None

    def store(
        self, prefix: str, body: Mapping[str, Any], etag: str | None, cache_control: str | None
    ) -> None:
        self._ranges[prefix] = CachedRange(body, etag, self.clock() + max_age(cache_control))
        self._ranges.move_to_end(prefix)
        while len(self._ranges) > self.size:
            self._ranges.popitem(last=False)

    def revalidated(self, prefix: str, cache_control: str | None) -> Mapping[str, Any]:
        """The cached body after a 304 Not Modified, good for another max-age."""
        cached = self._ranges[prefix]
        cached.expires = self.clock() + max_age(cache_control)
        return cached.body


class BloomFile:
    """A downloaded ``/v1/bloom`` file: the parameters line, then the bits (lsb0)."""

    def __init__(self, data: bytes) -> None:
        newline = data.index(b"\n")
        self.header: dict[str, Any] = json.loads(data[:newline])
        if self.header.get("format") != "reputation-bloom" or self.header.get("version") != 1:
            raise ValueError(f"not a filter this client can read: {self.header!r}")
        if self.header["hash"] != "xxh3_128" or self.header["bit_order"] != "lsb0":
            raise ValueError(f"unknown hashing or bit order: {self.header!r}")
        self.slices: int = self.header["slices"]
        self.bits_per_slice: int = self.header["bits_per_slice"]
        self.bits = data[newline + 1 :]
        if len(self.bits) != (self.slices * self.bits_per_slice + 7) // 8:
            raise ValueError("the filter's bits do not match its parameters")
        self.raw = data

    def __contains__(self, e164: str) -> bool:
        """Maybe known (all k bits set) or certainly unknown."""
        digest = xxhash.xxh3_128_intdigest(e164.encode())
        h1, h2 = digest & _MASK64, digest >> 64
        m = self.bits_per_slice
        for i in range(self.slices):
            bit = i * m + (h1 + i * h2) % m
            if not (self.bits[bit >> 3] >> (bit & 7)) & 1:
                return False
        return True


class IncompleteExport(Exception):
    """An export stream ended without its closing line: nothing of it was applied."""


class OfflineList:
    """A local copy of the published list that answers without the network.

    Keep it current with ``reputation.client``'s ``sync_offline`` (a delta
    since ``version``, the whole list the first time or when the service no
    longer knows the version, and the Bloom filter when it changed). An export
    is applied only once its closing line has arrived, so a cut connection
    leaves the copy as it was.
    """

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Any]] = {}
        self.version: str | None = None
        self.bloom: BloomFile | None = None
        self.bloom_etag: str | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def check(self, number: str, region: str = "VN") -> ListedAnswer:
        """The verdict for a number (any written form) from the local copy alone.

        ``InvalidNumber`` (with its code) when it is not a number at all.
        """
        e164 = normalize(number, region)
        answer = ListedAnswer.from_entry(e164, self.entries.get(e164))
        if self.bloom is None:
            return answer
        known = answer.listed or e164 in self.bloom
        return ListedAnswer(
            answer.number,
            answer.verdict,
            answer.listed,
            answer.category,
            answer.reports,
            answer.reporters,
            known,
        )

    def apply_export(self, lines: Iterable[bytes | str]) -> int:
        """Apply one export stream (JSON lines); returns the entries and markers read."""
        reader = self.reader()
        for line in lines:
            reader.feed(line)
        return reader.finish()

    def reader(self) -> ExportReader:
        """A reader to feed an export's lines to as they arrive."""
        return ExportReader(self)

    def commit(self, full: bool, version: str, staged: dict[str, dict[str, Any] | None]) -> None:
        """Apply what an export reader staged (a full export's staging holds no deletions)."""
        if full:
            self.entries = cast(dict[str, dict[str, Any]], staged)
        else:
            for number, entry in staged.items():
                if entry is None:
                    self.entries.pop(number, None)
                else:
                    self.entries[number] = entry
        self.version = version

    def set_bloom(self, data: bytes, etag: str | None) -> None:
        self.bloom = BloomFile(data)
        self.bloom_etag = etag

    def export_lines(self) -> list[dict[str, Any]]:
        """The copy as the entry lines of a full export, by number."""
        return sorted(({"number": n, **e} for n, e in self.entries.items()), key=_by_number)

    def save(self, path: Path) -> None:
        """Write the copy (a full export file, and ``<path>.bloom``) for the next start."""
        if self.version is None:
            raise ValueError("nothing to save: the copy was never synced")
        lines = [
            {"version": self.version, "since": None, "full": True, "bloom_etag": self.bloom_etag},
            *self.export_lines(),
            {"end": True, "entries": len(self.entries)},
        ]
        _write_atomically(path, b"".join(json.dumps(line).encode() + b"\n" for line in lines))
        if self.bloom is not None:
            _write_atomically(_bloom_path(path), self.bloom.raw)

    @classmethod
    def load(cls, path: Path) -> OfflineList:
        """A copy saved by ``save``."""
        copy = cls()
        with path.open("rb") as lines:
            copy.apply_export(lines)
        with path.open("rb") as lines:
            etag = json.loads(lines.readline()).get("bloom_etag")
        if _bloom_path(path).exists():
            copy.set_bloom(_bloom_path(path).read_bytes(), etag)
        return copy


class ExportReader:
    """Reads one export's lines into a staging area; the copy changes only at the end."""

    def __init__(self, offline: OfflineList) -> None:
        self.offline = offline
        self.header: dict[str, Any] | None = None
        self.staged: dict[str, dict[str, Any] | None] = {}
        self.read = 0
        self.done = False

    def feed(self, raw: bytes | str) -> None:
        if not raw.strip():
            return
        line = orjson.loads(raw)
        if self.done:
            raise ValueError("a line after the export's closing line")
        if self.header is None:
            self.header = line
            if not line["full"] and self.offline.version is None:
                raise ValueError("a delta export needs a copy to apply it to")
        elif line.get("end"):
            if line["entries"] != self.read:
                raise IncompleteExport(f"{self.read} lines for {line['entries']} announced")
            self.offline.commit(self.header["full"], self.header["version"], self.staged)
            self.done = True
        elif line.get("deleted"):
            if self.header["full"]:
                self.staged.pop(line["number"], None)
            else:
                self.staged[line["number"]] = None
            self.read += 1
        else:
            self.staged[line.pop("number")] = line
            self.read += 1

    def finish(self) -> int:
        """The lines applied; ``IncompleteExport`` if the closing line never came."""
        if not self.done:
            raise IncompleteExport("the export ended before its closing line")
        return self.read


def _bloom_path(path: Path) -> Path:
    return path.with_name(path.name + ".bloom")


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


def _by_number(entry: Mapping[str, Any]) -> str:
    return str(entry["number"])
