"""Private lookups by hash prefix (k-anonymity): the in-memory index behind ``/v1/ranges``.

A client hashes the number it wants to check (``sha256`` of the E.164 text
with its ``+``, as UTF-8, in lowercase hex) and asks for every listed number
whose hash starts with the first few characters. It then looks for the rest
of its own hash in the answer; the server never learns which number (of the
thousands that share the prefix) was asked about.

The index holds every listed number, grouped by the first 5 hex characters
(20 bits) of its hash. ``RangeKeeper`` loads it from the published list at
start-up and keeps it current: at once for this node's own reports, and by
following the published list's changes for everything else. It answers from
memory: no query per request.

Answers are padded: the body of a range holding ``n`` entries is exactly as
long as that of any other range of the same *size class* (32 entries, then
64, 128, ... as ``n`` grows), so that the size of an encrypted answer says
next to nothing about which range was asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import asyncpg

from reputation.constants import RANGE_CACHE_BYTES, RANGE_MIN_ENTRIES, RANGE_PREFIX_LENGTHS
from reputation.listing import ListEntry, ListVersion, list_entry
from reputation.records import NumberRecord
from reputation.store import Store, list_entry_from_row

logger = logging.getLogger(__name__)

# The index is kept at the finest prefix the API accepts.
SLOT_HEX = max(RANGE_PREFIX_LENGTHS)
_SLOT_BITS = 4 * SLOT_HEX
_SLOTS = 1 << _SLOT_BITS
# A slot is the first 20 bits of the digest's first 3 bytes.
_SLOT_SHIFT = 24 - _SLOT_BITS
_DIGEST_BYTES = 32
# A stored entry: its 32-byte digest, then the 2-byte id of its published view.
_RECORD = _DIGEST_BYTES + 2
_HEX = frozenset("0123456789abcdef")
# Rows read per round trip when the index loads or catches up.
LOAD_BATCH_ROWS = 20_000
# Least time between two reads of the published list's changes.
MIN_CATCH_UP_SECONDS = 0.05
# Pauses between attempts while PostgreSQL cannot be read.
MIN_RETRY_SECONDS = 0.25
MAX_RETRY_SECONDS = 10.0

# What an entry says besides its hash: (verdict, category, reports, reporters).
View = tuple[str, str | None, int, int]


def number_hash(e164: str) -> bytes:
    """The SHA-256 digest a client computes for a number: over its E.164 text, ``+`` included."""
    return hashlib.sha256(e164.encode()).digest()


def parse_prefix(text: str) -> str | None:
    """The prefix in lowercase, or ``None`` if it is not 3 to 5 hex characters."""
    prefix = text.lower()
    if len(prefix) not in RANGE_PREFIX_LENGTHS or not _HEX.issuperset(prefix):
        return None
    return prefix


def recommended_prefix_length(listed: int) -> int:
    """The longest prefix whose ranges hold ``RANGE_MIN_ENTRIES`` listed numbers on average.

    Shorter prefixes hide the asker among more numbers and cost bigger answers;
    this is the shortest answer that still holds a few dozen real entries.
    """
    for length in sorted(RANGE_PREFIX_LENGTHS, reverse=True):
        if listed >= RANGE_MIN_ENTRIES * 16**length:
            return length
    return min(RANGE_PREFIX_LENGTHS)


@dataclass(frozen=True, slots=True)
class RangeAnswer:
    """The body of one range, ready to send, and its entity tag."""

    body: bytes
    etag: str
    entries: int


class RangeIndex:
    """Listed numbers by hash prefix, packed to keep a million entries in a few dozen MB.

    Each non-empty slot (one per 5-hex prefix) is one ``bytes`` object of
    fixed-size records sorted by digest; the views (verdict, category, rounded
    counts) are interned, since only a few hundred distinct ones exist.
    Answers for 3- and 4-character prefixes (hundreds of entries to encode)
    are kept, up to ``RANGE_CACHE_BYTES``, until a number of theirs changes.
    """

    def __init__(self) -> None:
        self._slots: list[bytes | None] = [None] * _SLOTS
        self._views: list[View] = []
        self._view_ids: dict[View, int] = {}
        # The JSON members after the suffix, by view id as 4 hex characters.
        self._view_json: dict[str, str] = {}
        self._answers: OrderedDict[str, RangeAnswer] = OrderedDict()
        self._answer_bytes = 0
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def apply(self, e164: str, entry: ListEntry | None) -> None:
        """Make the index say what the list says now about ``e164`` (``None``: not listed)."""
        digest = number_hash(e164)
        slot = _slot_of(digest)
        records = self._slots[slot] or b""
        kept = [
            records[i : i + _RECORD]
            for i in range(0, len(records), _RECORD)
            if records[i : i + _DIGEST_BYTES] != digest
        ]
        self.count -= len(records) // _RECORD - len(kept)
        if entry is not None:
            kept.append(digest + self._view_id(entry))
            kept.sort()
            self.count += 1
        self._slots[slot] = b"".join(kept) if kept else None
        hex_slot = f"{slot:0{SLOT_HEX}x}"
        for length in RANGE_PREFIX_LENGTHS:
            self._forget(hex_slot[:length])

    def load(self, entries: Iterable[ListEntry]) -> None:
        """Add many numbers at once (start-up): each slot is packed once, not once per number."""
        sha256, view_ids = hashlib.sha256, self._view_ids
        grouped: defaultdict[int, list[bytes]] = defaultdict(list)
        for entry in entries:
            view = (entry.verdict, entry.category, entry.reports, entry.reporters)
            found = view_ids.get(view)
            view_id = found.to_bytes(2, "big") if found is not None else self._view_id(entry)
            digest = sha256(entry.e164.encode()).digest()
            grouped[int.from_bytes(digest[:3], "big") >> _SLOT_SHIFT].append(digest + view_id)
        slots = self._slots
        for slot, added in grouped.items():
            records = slots[slot]
            if records is None and len(added) == 1:
                slots[slot] = added[0]  # most slots: one number, nothing to merge
                self.count += 1
                continue
            merged = {record[:_DIGEST_BYTES]: record for record in _split(records)}
            before = len(merged)
            merged.update((record[:_DIGEST_BYTES], record) for record in added)
            self.count += len(merged) - before
            slots[slot] = b"".join(sorted(merged.values()))
        self._answers.clear()
        self._answer_bytes = 0

    def _view_id(self, entry: ListEntry) -> bytes:
        view: View = (entry.verdict, entry.category, entry.reports, entry.reporters)
        found = self._view_ids.get(view)
        if found is None:
            found = self._view_ids[view] = len(self._views)
            self._views.append(view)
            verdict, category, reports, reporters = view
            self._view_json[f"{found:04x}"] = (
                f'"verdict":"{verdict}","category":{json.dumps(category, ensure_ascii=False)},'
                f'"reports":{reports},"reporters":{reporters}}}'
            )
        return found.to_bytes(2, "big")

    def answer(self, prefix: str) -> RangeAnswer:
        """Every listed number whose hash starts with ``prefix`` (3 to 5 lowercase hex)."""
        cached = self._answers.get(prefix)
        if cached is not None:
            self._answers.move_to_end(prefix)
            return cached
        answer = self._encode(prefix)
        if len(prefix) < SLOT_HEX:
            self._answers[prefix] = answer
            self._answer_bytes += len(answer.body)
            while self._answer_bytes > RANGE_CACHE_BYTES:
                self._forget(next(iter(self._answers)))
        return answer

    def _forget(self, prefix: str) -> None:
        dropped = self._answers.pop(prefix, None)
        if dropped is not None:
            self._answer_bytes -= len(dropped.body)

    def _encode(self, prefix: str) -> RangeAnswer:
        shift = 4 * (SLOT_HEX - len(prefix))
        first = int(prefix, 16) << shift
        # One hex string for every record: 64 characters of digest, 4 of view id.
        records = b"".join(s for s in self._slots[first : first + (1 << shift)] if s).hex()
        start, views = len(prefix), self._view_json
        parts = [
            f'{{"suffix":"{records[i + start : i + 64]}",{views[records[i + 64 : i + 68]]}'
            for i in range(0, len(records), 2 * _RECORD)
        ]
        unpadded = f'{{"prefix":"{prefix}","entries":[{",".join(parts)}],"padding":"'.encode()
        room = size_class(len(parts))
        while padded_size(len(prefix), room) < len(unpadded) + len(_BODY_END):
            room *= 2  # entries longer than foreseen (a new category): the next size class
        target = padded_size(len(prefix), room)
        body = unpadded + padding(target - len(unpadded) - len(_BODY_END)) + _BODY_END
        etag = hashlib.sha256(body).hexdigest()[:32]
        return RangeAnswer(body, etag, len(parts))


def _slot_of(digest: bytes) -> int:
    return int.from_bytes(digest[:3], "big") >> _SLOT_SHIFT


def _split(records: bytes | None) -> list[bytes]:
    if records is None:
        return []
    return [records[i : i + _RECORD] for i in range(0, len(records), _RECORD)]


_BODY_END = b'"}'
# Room for one entry in a padded answer: the longest entry any known verdict,
# category and count can make, plus its comma.
_LONGEST_ENTRY = (
    '{"suffix":"","verdict":"block","category":"impersonation","reports":100,"reporters":100},'
)


def size_class(entries: int) -> int:
    """Entries an answer is padded for: ``RANGE_MIN_ENTRIES``, then powers of two."""
    size = RANGE_MIN_ENTRIES
    while size < entries:
        size *= 2
    return size


def padded_size(prefix_length: int, room: int) -> int:
    """Bytes of every answer of this prefix length padded for ``room`` entries."""
    envelope = len('{"prefix":"","entries":[],"padding":""}') + prefix_length
    slot = len(_LONGEST_ENTRY) + 64 - prefix_length
    return envelope + room * slot


_padding = bytearray()


def padding(length: int) -> bytes:
    """``length`` hex characters of fixed pseudo-random padding (compresses like the entries)."""
    while len(_padding) < length:
        block = len(_padding) // 64
        _padding.extend(hashlib.sha256(b"range padding %d" % block).hexdigest().encode())
    return bytes(_padding[:length])


class RangeKeeper:
    """This node's range index: loaded from the published list, then kept current.

    ``remember`` applies a change this node just committed, at once and with
    no I/O (``Lookups.remember`` calls it). Everything else (other nodes'
    reports, analysts' decisions, decay) arrives by following the published
    list itself: every ``interval`` seconds, or sooner after ``wake``, the
    keeper reads what changed since the snapshot it last read, exactly as an
    offline copy syncs by deltas. That also repairs the rare case of two local
    changes to one number remembered in the opposite order of their commits.
    """

    def __init__(
        self, store: Store, verdict_of: Callable[[NumberRecord], str], interval: float
    ) -> None:
        self.store = store
        self.verdict_of = verdict_of
        self.interval = interval
        # None until loaded: /v1/ranges answers 503 meanwhile.
        self.index: RangeIndex | None = None
        # The snapshot the index holds everything of.
        self.version: ListVersion | None = None
        self._wake = asyncio.Event()

    def remember(self, record: NumberRecord) -> None:
        if self.index is not None:
            self.index.apply(record.e164, list_entry(record, self.verdict_of(record)))

    def wake(self) -> None:
        """Read the published list's changes soon (the change feed says something moved)."""
        self._wake.set()

    async def load(self) -> None:
        """Build the index from the whole published list, then swap it in."""
        started = time.perf_counter()
        index = RangeIndex()
        async with self.store.list_export(None) as export:
            async for rows in export.batches(LOAD_BATCH_ROWS):
                index.load(list_entry_from_row(row) for row in rows)
            version = export.version
        self.index, self.version = index, ListVersion.parse(version)
        logger.info(
            "range index loaded: %d listed numbers in %.2f s",
            len(index),
            time.perf_counter() - started,
        )

    async def catch_up(self) -> int:
        """Apply what changed in the published list since the last read; returns the count."""
        index, version = self.index, self.version
        assert index is not None, "load first"
        assert version is not None
        applied = 0
        async with self.store.list_export(version) as export:
            async for rows in export.batches(LOAD_BATCH_ROWS):
                for row in rows:
                    entry = list_entry_from_row(row) if row["listed"] else None
                    index.apply(row["e164"], entry)
                applied += len(rows)
            read = export.version
        self.version = ListVersion.parse(read)
        return applied

    async def run(self) -> None:
        """Load (retrying while PostgreSQL cannot be read), then follow the list for good."""
        delay = MIN_RETRY_SECONDS
        while True:
            try:
                if self.index is None:
                    await self.load()
                else:
                    await self.catch_up()
                delay = MIN_RETRY_SECONDS
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                logger.warning("range index not updated (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_SECONDS)
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()
            self._wake.clear()
            # A burst of changes costs one read per pause, not one per change.
            await asyncio.sleep(MIN_CATCH_UP_SECONDS)
