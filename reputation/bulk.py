"""Bulk lists: ``reputation import FILE`` and ``reputation export``.

Import reads a CSV file (with a header row) or JSON lines, plain or gzipped,
one line at a time: a 10-million-line list needs no more memory than a short
one. Each line is ``number, category, count, source``:

- ``count`` (default 1) is how many distinct people the source says reported
  the number. Each counts as one reporter, identified by (source, number, n),
  so the number's verdict moves as if they had reported it themselves, and the
  daily cap of one reporter never cuts a list short.
- Every report gets an Idempotency-Key derived from (source, number, category,
  n): re-running an import, or one that stopped half-way, counts nothing twice;
  raising a line's count later adds only the new people.

Reports are folded into their numbers by the same code as the API's
(``Store.record_reports``: one verdict policy, one change feed, one set-based
write of a whole group), a few thousand per transaction. Lines that cannot be
imported are written, with their line number, error code and text, to a side
file, and the summary counts them by code.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import gzip
import hashlib
import io
import json
import logging
import os
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from reputation.constants import CATEGORIES, IMPORT_CHANNEL
from reputation.errors import ReputationError
from reputation.lookup import Answer, answer_body
from reputation.progress import CountingReader, Progress
from reputation.records import NewReport, NumberRecord
from reputation.reports import number_field, optional_string
from reputation.store import Store
from reputation.verdict import judge

logger = logging.getLogger(__name__)

# People one line may stand for; a larger figure is a mistake, not a list.
MAX_IMPORT_COUNT = 1000
# Longest source name ("police-hcmc-2026-06", "viettel-complaints").
MAX_SOURCE_CHARS = 100
# Lines read before their reports are written (bounds the memory of a run).
BATCH_LINES = 5_000
# Transactions written at the same time (a few connections of the pool).
CONCURRENCY = 4
FORMATS = ("csv", "jsonl")
EXPORT_BATCH = 5_000
EXPORT_CSV_COLUMNS = (
    "number",
    "verdict",
    "score",
    "status",
    "reports",
    "reporters",
    "categories",
    "first_reported_at",
    "last_reported_at",
    "reasons",
)


class LineError(Exception):
    """A line that cannot be imported, with a machine-readable code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class ImportLine:
    line: int
    e164: str
    category: str
    count: int
    source: str

    def reports(self) -> list[NewReport]:
        """One report per person the source counted, each with its own stable key."""
        return [
            NewReport(
                e164=self.e164,
                reporter=None,
                channel=IMPORT_CHANNEL,
                category=self.category,
                content=f"Imported from {self.source}",
                idempotency_key=import_key(self.source, self.e164, self.category, n),
                reporter_id=f"import:{self.source}:{self.e164}:{n}",
            )
            for n in range(self.count)
        ]


def import_key(source: str, e164: str, category: str, n: int) -> str:
    """The Idempotency-Key of the n-th person behind a line of a source."""
    digest = hashlib.sha256("\x1f".join((source, e164, category, str(n))).encode()).hexdigest()
    return f"import:{digest}"


@dataclass
class ImportSummary:
    """What a run did; ``lines`` = ``imported`` + ``rejected``."""

    lines: int = 0
    imported: int = 0
    reports_added: int = 0
    reports_present: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def rejected_lines(self) -> int:
        return sum(self.rejected.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "imported": self.imported,
            "rejected": self.rejected_lines,
            "rejected_by_code": dict(self.rejected.most_common()),
            "reports_added": self.reports_added,
            "reports_already_present": self.reports_present,
            "seconds": round(self.seconds, 3),
            "lines_per_second": round(self.lines / self.seconds) if self.seconds else None,
        }


def detect_format(path: Path, given: str | None) -> str:
    if given is not None:
        return given
    name = path.name.lower().removesuffix(".gz")
    return "jsonl" if name.endswith((".jsonl", ".ndjson", ".json")) else "csv"


@contextlib.contextmanager
def open_text(path: Path) -> Iterator[tuple[TextIO, CountingReader]]:
    """The file as text (gunzipped when it ends in .gz), and its count of bytes read.

    Bytes that are not UTF-8 are kept as surrogates so that the run goes on
    and the line is refused on its own.
    """
    counter = CountingReader(path.open("rb"))
    buffered = io.BufferedReader(counter)
    binary: io.BufferedReader[CountingReader] | gzip.GzipFile = (
        gzip.GzipFile(fileobj=buffered, mode="rb") if path.name.endswith(".gz") else buffered
    )
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="surrogateescape", newline="")
    try:
        yield text, counter
    finally:
        text.close()


Row = tuple[int, str, Mapping[str, Any] | LineError]


def csv_rows(text: TextIO) -> Iterator[Row]:
    """``(line number, line as read, fields)`` of a CSV file with a header row."""
    reader = csv.reader(text)
    header = next(reader, None)
    if header is None:
        return
    names = [name.strip().lower() for name in header]
    if "number" not in names:
        raise ValueError(f"the header row must name a 'number' column, not {header!r}")
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        raw = io.StringIO()
        csv.writer(raw).writerow(row)
        yield reader.line_num, raw.getvalue().rstrip("\r\n"), dict(zip(names, row, strict=False))


def jsonl_rows(text: TextIO) -> Iterator[Row]:
    """``(line number, line, object)`` of a JSON lines file."""
    for number, line in enumerate(text, 1):
        stripped = line.strip()
        if not stripped:
            continue
        try:
            value = json.loads(stripped)
        except (ValueError, RecursionError):
            yield number, stripped, LineError("invalid_json", "The line is not valid JSON.")
            continue
        if not isinstance(value, dict):
            yield number, stripped, LineError("invalid_json", "The line is not a JSON object.")
            continue
        yield number, stripped, value


def parse_line(
    line: int,
    fields: Mapping[str, Any],
    region: str,
    default_source: str | None,
    default_category: str | None,
) -> ImportLine:
    """One validated line, or ``LineError`` with the code of the first problem."""
    try:
        e164 = number_field(fields, "number", region) if fields.get("number") else None
        category = optional_string(fields, "category")
        source = optional_string(fields, "source")
    except ReputationError as exc:
        raise LineError(exc.code, exc.message) from None
    if e164 is None:
        raise LineError("missing_field", "The line has no number.")
    category = (category or "").strip().lower() or default_category
    if category is None:
        raise LineError("missing_field", "The line has no category (or give --category).")
    if category not in CATEGORIES:
        raise LineError("invalid_category", f"The category must be one of {', '.join(CATEGORIES)}.")
    source = (source or "").strip() or default_source
    if source is None:
        raise LineError("missing_field", "The line has no source (or give --source).")
    if len(source) > MAX_SOURCE_CHARS:
        raise LineError("invalid_field", f"A source name is at most {MAX_SOURCE_CHARS} characters.")
    return ImportLine(line, e164, category, _count(fields.get("count")), source)


def _count(value: Any) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        return 1
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise LineError("invalid_count", "The count must be a whole number of people.")
    try:
        count = int(value.strip()) if isinstance(value, str) else value
    except ValueError:
        raise LineError("invalid_count", "The count must be a whole number of people.") from None
    if count < 1:
        raise LineError("invalid_count", "The count must be at least 1.")
    if count > MAX_IMPORT_COUNT:
        raise LineError("count_too_large", f"A line stands for at most {MAX_IMPORT_COUNT} people.")
    return count


class Importer:
    """Writes the reports of a batch of lines: a few transactions at a time, in number order."""

    def __init__(self, store: Store, summary: ImportSummary) -> None:
        self.store = store
        self.summary = summary

    async def write(self, batch: list[ImportLine]) -> None:
        reports = [report for line in batch for report in line.reports()]
        present = await self.store.existing_idempotency_keys(
            [r.idempotency_key for r in reports if r.idempotency_key is not None]
        )
        missing = sorted(
            (r for r in reports if r.idempotency_key not in present), key=lambda r: r.e164
        )
        self.summary.reports_present += len(present)
        # Contiguous runs of numbers: the transactions seldom touch the same number.
        size = -(-len(missing) // CONCURRENCY) if missing else 1
        chunks = [missing[i : i + size] for i in range(0, len(missing), size)]
        for added, already in await asyncio.gather(*map(self.store.record_reports, chunks)):
            self.summary.reports_added += added
            self.summary.reports_present += already
        self.summary.imported += len(batch)


async def import_file(
    store: Store,
    path: Path,
    *,
    region: str,
    rejected_path: Path,
    fmt: str | None = None,
    default_source: str | None = None,
    default_category: str | None = None,
    stream: TextIO,
) -> ImportSummary:
    """Import a list; refused lines go to ``rejected_path`` (CSV: line, code, message, input)."""
    summary = ImportSummary()
    importer = Importer(store, summary)
    fmt = detect_format(path, fmt)
    progress = Progress(os.stat(path).st_size, stream)
    with (
        open_text(path) as (text, counter),
        rejected_path.open("w", newline="", encoding="utf-8", errors="surrogateescape") as side,
    ):
        rejected = csv.writer(side)
        rejected.writerow(["line", "code", "message", "input"])
        batch: list[ImportLine] = []
        for line, raw, fields in csv_rows(text) if fmt == "csv" else jsonl_rows(text):
            summary.lines += 1
            try:
                if isinstance(fields, LineError):
                    raise fields
                batch.append(parse_line(line, fields, region, default_source, default_category))
            except LineError as exc:
                summary.rejected[exc.code] += 1
                rejected.writerow([line, exc.code, exc.message, raw])
            if len(batch) >= BATCH_LINES:
                await importer.write(batch)
                batch = []
                progress.update(summary.lines, counter.bytes_read, _note(summary))
        if batch:
            await importer.write(batch)
    summary.seconds = progress.finish(summary.lines, counter.bytes_read, _note(summary))
    return summary


def _note(summary: ImportSummary) -> str:
    return f"rejected {summary.rejected_lines:,}" if summary.rejected_lines else ""


async def export_numbers(
    store: Store,
    out: TextIO,
    *,
    fmt: str,
    now: datetime,
    verdicts: frozenset[str] | None = None,
) -> int:
    """Write every listed number with its verdict (CSV or JSON lines); how many were written."""
    protected = await store.protected_keys()
    writer = csv.writer(out) if fmt == "csv" else None
    if writer is not None:
        writer.writerow(EXPORT_CSV_COLUMNS)
    written = 0
    async for records in store.all_numbers(EXPORT_BATCH):
        for record in records:
            judgement = judge(record, now, store.policy, protected=record.e164 in protected)
            if verdicts is not None and judgement.verdict not in verdicts:
                continue
            body = answer_body(Answer(record.e164, record, "database"), judgement)
            if writer is None:
                out.write(json.dumps(body, ensure_ascii=False) + "\n")
            else:
                writer.writerow(_csv_row(record, body))
            written += 1
    return written


def _csv_row(record: NumberRecord, body: Mapping[str, Any]) -> list[Any]:
    categories = ";".join(f"{name}={count}" for name, count in sorted(record.categories.items()))
    return [
        body["number"],
        body["verdict"],
        body["score"],
        body["status"],
        body["reports"],
        body["reporters"],
        categories,
        body["first_reported_at"] or "",
        body["last_reported_at"] or "",
        ";".join(body["reasons"]),
    ]
