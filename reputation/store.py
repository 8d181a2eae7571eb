"""Every call to PostgreSQL, through the named queries of ``sql/queries.sql``."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from reputation import evidence, privacy
from reputation.changes import Change, FeedPosition
from reputation.constants import (
    CHANGE_DECAY,
    CHANGE_POLICY,
    CHANGE_PROTECTED,
    CHANGE_REPORT,
    CHANGE_STATUS,
    MAX_REPORTS_PER_COMMIT,
    REPORT_DEADLOCK_RETRIES,
    REPORT_WRITERS,
)
from reputation.errors import Conflict, IdempotencyConflict, NotFound, VersionUnknown
from reputation.evidence import Contribution, ReporterState
from reputation.fold import (
    DayKey,
    FoldedReport,
    GroupFold,
    LockedNumber,
    PairKey,
    days_to_lock,
    stored_verdict,
)
from reputation.health import UNAVAILABLE
from reputation.listing import ListEntry, ListVersion
from reputation.queries import queries
from reputation.records import (
    Appeal,
    AuditEntry,
    ListedReport,
    NewReport,
    NumberRecord,
    ProtectedNumber,
    QueueEntry,
    SmsRecord,
    StoredReport,
)
from reputation.settings import Settings
from reputation.verdict import Policy

Clock = Callable[[], datetime]

# pg_advisory_xact_lock key held by the node sweeping decayed verdicts ("verdicts").
SWEEP_LOCK_KEY = 0x7665726469637473
# server_state name of the fingerprint of the verdict policy the stored verdicts follow.
POLICY_STATE = "verdict_policy"
# Review queue orders and the first-page bound of each key (above any real key).
QUEUE_ORDERS: dict[str, tuple[str, Any]] = {
    "reporters": ("queue_by_reporters", 2**31 - 1),
    "recent": ("queue_by_recent", datetime.max.replace(tzinfo=UTC)),
    "heat": ("queue_by_heat", float("inf")),
}
# Lowest possible id + 1, and highest: bounds of the id-keyed listings.
_NO_ID, _ANY_ID = 0, 2**63 - 1


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


@asynccontextmanager
async def create_pool(dsn: str, settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """A connection pool whose connections decode ``jsonb`` to Python values."""
    async with asyncpg.create_pool(
        dsn,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        init=_init_connection,
    ) as pool:
        yield pool


@dataclass(frozen=True, slots=True)
class RecordedReport:
    """The outcome of a report: the report kept and its number's new aggregate."""

    report: StoredReport
    number: NumberRecord
    replayed: bool
    # The change log row of this report (None for a replay): the node that
    # wrote it already knows the number's new state.
    change_seq: int | None = None
    # The transaction that kept it (None for a replay).
    txid: int | None = None


def request_fingerprint(key: bytes, report: NewReport) -> bytes:
    """What an Idempotency-Key stands for: a replay must carry the same report.

    Keyed like the reporter hash: a plain digest of a body that holds the
    reporter's number could be reversed by trying every number.
    """
    fields = [report.e164, report.reporter, report.channel, report.category, report.content]
    if report.reporter_id is not None:  # only then: earlier fingerprints stay valid
        fields.append(report.reporter_id)
    canonical = json.dumps(fields)
    return hmac.new(key, canonical.encode(), hashlib.sha256).digest()


@dataclass(frozen=True, slots=True)
class FeedNode:
    """A node following the change feed: where it runs and when it last said so."""

    host: str
    pid: int
    started_at: datetime
    seen_at: datetime
    position_at: datetime
    now: datetime


@dataclass(frozen=True, slots=True)
class FeedHead:
    """Where the change log stands, as seen by one snapshot."""

    position: FeedPosition
    taken_at: datetime
    # Changes written by transactions below this id may have been pruned.
    pruned_below: int
    # Grows when rows vanish without passing through the change log (TRUNCATE).
    generation: int


@dataclass(frozen=True, slots=True)
class StoredFilter:
    """The description of a stored Bloom filter snapshot (its bits are read separately)."""

    id: int
    created_at: datetime
    generation: int
    position: FeedPosition
    hashing: str
    capacity: int
    error_rate: float
    num_slices: int
    bits_per_slice: int
    items: int
    size: int


class ConsistentRead:
    """Reads that all see the same database snapshot (one read-only REPEATABLE READ transaction).

    Reading the feed head and then the changes or the numbers inside one of these
    gives data that is exactly what the head's position says.
    """

    def __init__(self, conn: asyncpg.Connection, sql: dict[str, str]) -> None:
        self.conn = conn
        self.sql = sql

    async def head(self) -> FeedHead:
        row = await self.conn.fetchrow(self.sql["feed_head"])
        return FeedHead(
            FeedPosition.parse(row["position"]),
            row["taken_at"],
            row["pruned_below"],
            row["generation"],
        )

    async def changes_since(
        self, position: FeedPosition, batch_size: int = 10_000
    ) -> AsyncIterator[list[Change]]:
        """The changes visible in this snapshot that ``position`` does not hold, in batches."""
        cursor = self.conn.cursor(
            self.sql["changes_since"],
            position.xmax,
            sorted(position.in_progress),
            prefetch=batch_size,
        )
        batch: list[Change] = []
        async for row in cursor:
            batch.append(Change(row["seq"], row["e164"], row["kind"], row["changed_at"]))
            if len(batch) >= batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    async def copy_number_keys(self, sink: Callable[[bytes], Awaitable[None]]) -> None:
        """Every known number, streamed to ``sink`` as chunks of COPY text (one number a line)."""
        await self.conn.copy_from_query(self.sql["copy_number_keys"], output=sink)


@dataclass(frozen=True, slots=True)
class ListExport:
    """An export being read in one snapshot: its version, then its rows or its JSON lines.

    Rows with ``listed`` false are deletion markers (only in a delta).
    """

    version: str
    since: ListVersion | None
    conn: asyncpg.Connection
    sql: dict[str, str]

    def _query(self, full: str, delta: str) -> tuple[str, tuple[Any, ...]]:
        if self.since is None:
            return self.sql[full], ()
        return self.sql[delta], (self.since.xmin, str(self.since))

    async def batches(self, size: int) -> AsyncIterator[list[asyncpg.Record]]:
        query, args = self._query("listed_entries", "list_changes_since")
        cursor = await self.conn.cursor(query, *args)
        while rows := await cursor.fetch(size):
            yield rows

    async def copy_lines(self, output: Callable[[bytes], Awaitable[None]]) -> None:
        """The export's JSON lines, formatted by PostgreSQL and handed over as they come.

        CSV with a quote and a delimiter that JSON text never holds (control
        characters are escaped in it) passes each line through unchanged.
        """
        query, args = self._query("listed_entry_lines", "list_change_lines")
        await self.conn.copy_from_query(
            query.rstrip().removesuffix(";"),  # COPY (query) TO STDOUT takes no ";"
            *args,
            output=output,
            format="csv",
            quote="\x01",
            delimiter="\x02",
        )


def list_entry_from_row(row: asyncpg.Record) -> ListEntry:
    return ListEntry(row["e164"], row["verdict"], row["category"], row["reports"], row["reporters"])


class CommitInDoubt(ConnectionError):
    """The connection was lost while committing: the write may or may not have happened.

    ``pg_xact_status(txid)`` tells which, once PostgreSQL answers again.
    """

    def __init__(self, txid: int) -> None:
        super().__init__(f"connection lost while committing transaction {txid}")
        self.txid = txid


class _KeyTaken(Exception):
    """Another transaction stored a report with the same Idempotency-Key first."""


@dataclass(frozen=True, slots=True)
class _PendingReport:
    """A report waiting for the commit that will hold it."""

    report: NewReport
    fingerprint: bytes
    outcome: asyncio.Future[RecordedReport]


class _GroupCommit:
    """Group commit of reports: the ones that arrive during a commit share the next one.

    Every report is acknowledged only once the transaction holding it has
    committed, exactly as when each had its own; but a commit (an fsync, and a
    NOTIFY lock that serialises committing transactions) is paid once per
    group. A lone report is written at once, without waiting for company.
    """

    def __init__(
        self,
        acquire: Callable[[], AbstractAsyncContextManager[asyncpg.Connection]],
        write: Callable[
            [asyncpg.Connection, list[_PendingReport]], Awaitable[list[RecordedReport | _KeyTaken]]
        ],
    ) -> None:
        self._acquire = acquire
        self._write = write
        self._queue: list[_PendingReport] = []
        self._writers: set[asyncio.Task[None]] = set()

    async def write(self, report: NewReport, fingerprint: bytes) -> RecordedReport:
        """The report once committed; ``_KeyTaken`` if its key was taken meanwhile."""
        loop = asyncio.get_running_loop()
        pending = _PendingReport(report, fingerprint, loop.create_future())
        self._queue.append(pending)
        if len(self._writers) < REPORT_WRITERS:
            writer = loop.create_task(self._drain())
            self._writers.add(writer)
            writer.add_done_callback(self._writers.discard)
        # Shielded: a caller that goes away does not undo the others' commit.
        return await asyncio.shield(pending.outcome)

    def _next_group(self) -> list[_PendingReport]:
        group = self._queue[:MAX_REPORTS_PER_COMMIT]
        del self._queue[:MAX_REPORTS_PER_COMMIT]
        return group

    async def _drain(self) -> None:
        """Write groups while reports wait, on one connection as long as it serves."""
        while self._queue:
            group = self._next_group()
            try:
                async with self._acquire() as conn:
                    while await self._commit(conn, group) and self._queue:
                        group = self._next_group()
            except Exception as exc:  # no connection to be had
                _fail(group, exc)
            except BaseException as exc:  # cancelled at shutdown: tell the callers, stop
                _fail(group, exc)
                raise

    async def _commit(self, conn: asyncpg.Connection, group: list[_PendingReport]) -> bool:
        """Write one group and answer its callers; False if the connection may be broken."""
        for attempt in range(REPORT_DEADLOCK_RETRIES + 1):
            try:
                outcomes = await self._write(conn, group)
            except asyncpg.DeadlockDetectedError as exc:
                if attempt < REPORT_DEADLOCK_RETRIES:
                    continue  # rolled back whole: nothing of it was kept
                _fail(group, exc)
                return True
            except Exception as exc:
                _fail(group, exc)
                return False
            for pending, outcome in zip(group, outcomes, strict=True):
                if pending.outcome.done():
                    continue
                if isinstance(outcome, _KeyTaken):
                    pending.outcome.set_exception(outcome)
                else:
                    pending.outcome.set_result(outcome)
            return True
        return True


def _fail(group: list[_PendingReport], exc: BaseException) -> None:
    for pending in group:
        if not pending.outcome.done():
            pending.outcome.set_exception(exc)


class Store:
    """The service's view of PostgreSQL; the only module that runs SQL."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        reporter_key: bytes,
        clock: Clock,
        settings: Settings | None = None,
    ) -> None:
        self.pool = pool
        # Where lookups that memory cannot answer are read: a read replica when
        # one is configured (it may lag), else the primary.
        self.lookup_pool = pool
        self.reporter_key = reporter_key
        self.clock = clock
        self.sql = queries()
        settings = settings if settings is not None else Settings()
        self.policy = Policy.from_settings(settings)
        self.daily_cap = settings.reporter_daily_cap
        self.day_offset = settings.reporter_day_utc_offset
        self._report_commits = _GroupCommit(lambda: self.pool.acquire(), self._write_reports)

    @staticmethod
    async def load_reporter_key(pool: asyncpg.Pool, configured: str | None) -> bytes:
        """The key that hashes reporter numbers: configured, or generated once per database."""
        if configured:
            return configured.encode()
        value: bytes = await pool.fetchval(
            queries()["get_secret"], "reporter_key", secrets.token_bytes(32)
        )
        return value

    async def fetch_number(self, e164: str) -> NumberRecord | None:
        row = await self.pool.fetchrow(self.sql["fetch_number"], e164)
        return NumberRecord.from_row(row) if row else None

    async def fetch_numbers(self, numbers: list[str]) -> dict[str, NumberRecord]:
        rows = await self.pool.fetch(self.sql["fetch_numbers"], numbers)
        return {row["e164"]: NumberRecord.from_row(row) for row in rows}

    async def lookup_numbers(self, numbers: list[str]) -> dict[str, NumberRecord]:
        """The records of lookup misses, from ``lookup_pool`` (a replica may lag a little)."""
        if len(numbers) == 1:
            row = await self.lookup_pool.fetchrow(self.sql["fetch_number"], numbers[0])
            return {numbers[0]: NumberRecord.from_row(row)} if row else {}
        rows = await self.lookup_pool.fetch(self.sql["fetch_numbers"], numbers)
        return {row["e164"]: NumberRecord.from_row(row) for row in rows}

    async def count_numbers(self) -> int:
        count: int = await self.pool.fetchval(self.sql["count_numbers"])
        return count

    async def number_keys(self, batch_size: int = 50_000) -> AsyncIterator[list[str]]:
        """Every known number, in batches, read through a server-side cursor."""
        async with self.pool.acquire() as conn, conn.transaction():
            cursor = await conn.cursor(self.sql["all_number_keys"])
            while rows := await cursor.fetch(batch_size):
                yield [row[0] for row in rows]

    async def most_reported(self, limit: int) -> list[NumberRecord]:
        rows = await self.pool.fetch(self.sql["most_reported_numbers"], limit)
        return [NumberRecord.from_row(row) for row in rows]

    async def record_report(self, report: NewReport) -> RecordedReport:
        """Keep a report and fold it into its number, in one transaction.

        With an Idempotency-Key already used for the same report, nothing is
        counted again and the first report is returned (``replayed``); used for
        a different report, ``IdempotencyConflict``.
        """
        fingerprint = request_fingerprint(self.reporter_key, report)
        if report.idempotency_key is not None:
            earlier = await self._replay(report.idempotency_key, fingerprint)
            if earlier is not None:
                return earlier
        try:
            return await self._report_commits.write(report, fingerprint)
        except _KeyTaken:
            assert report.idempotency_key is not None
            earlier = await self._replay(report.idempotency_key, fingerprint)
            assert earlier is not None, "the report holding the key has committed"
            return earlier

    async def _replay(self, key: str, fingerprint: bytes) -> RecordedReport | None:
        row = await self.pool.fetchrow(self.sql["claim_idempotency_key"], key)
        if row is None:
            return None
        if row["request_hash"] != fingerprint:
            raise IdempotencyConflict()
        number = await self.fetch_number(row["e164"])
        assert number is not None
        return RecordedReport(StoredReport.from_row(row), number, replayed=True)

    async def _write_reports(
        self, conn: asyncpg.Connection, group: list[_PendingReport]
    ) -> list[RecordedReport | _KeyTaken]:
        """A group of reports in one transaction, with one NOTIFY for all of them.

        A report whose Idempotency-Key another transaction (or an earlier
        report of the group) took first counts nothing and comes back as
        ``_KeyTaken``.
        """
        txid: int | None = None  # known once only the COMMIT is left
        try:
            async with conn.transaction():
                outcomes, txid = await self._write_group(
                    conn, [(pending.report, pending.fingerprint) for pending in group]
                )
        except UNAVAILABLE as exc:
            # The COMMIT got no answer: pg_xact_status(txid) will tell.
            if txid is not None:
                raise CommitInDoubt(txid) from exc
            raise
        return outcomes

    async def record_reports(self, reports: list[NewReport]) -> tuple[int, int]:
        """Keep many new reports in one transaction (bulk import): ``(added, already kept)``.

        The reports are folded in the order given, exactly as ``record_report``
        would fold them one by one; one whose Idempotency-Key is taken is
        skipped.
        """
        items = [(report, request_fingerprint(self.reporter_key, report)) for report in reports]
        for attempt in range(REPORT_DEADLOCK_RETRIES + 1):
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    outcomes, _ = await self._write_group(conn, items)
                break
            except asyncpg.DeadlockDetectedError:
                if attempt == REPORT_DEADLOCK_RETRIES:
                    raise
        added = sum(1 for outcome in outcomes if isinstance(outcome, RecordedReport))
        return added, len(outcomes) - added

    async def _write_group(
        self, conn: asyncpg.Connection, items: list[tuple[NewReport, bytes]]
    ) -> tuple[list[RecordedReport | _KeyTaken], int | None]:
        """Write reports (with their fingerprints) in the caller's transaction, in a few statements.

        Creates and locks the numbers, keeps the reports that have an
        Idempotency-Key (so that taken keys are known before anything is
        counted) and reads their reporters, locks the reporter days they may
        count on, folds every report in order in memory (``fold.GroupFold``),
        then writes everything back in one statement. Returns each report's
        outcome and the transaction id (None when no report was kept).
        """
        sql = self.sql
        key = self.reporter_key
        reports = [report for report, _ in items]
        reporters = [
            privacy.reporter_hash(
                key, r.reporter if r.reporter is not None else r.reporter_id, r.channel
            )
            for r in reports
        ]
        e164s = sorted({r.e164 for r in reports})
        created = {row[0] for row in await conn.fetch(sql["ensure_numbers"], e164s)}
        numbers: dict[str, LockedNumber] = {}
        for row in await conn.fetch(sql["lock_numbers"], e164s):
            numbers[row["e164"]] = LockedNumber(
                NumberRecord.from_row(row),
                row["cleared_at"] if row["status"] == "cleared" else None,
                row["protected"],
                row["e164"] in created,
            )
        # Dated once the numbers are locked, as a report written alone is.
        times = [r.received_at or self.clock() for r in reports]
        masked = [privacy.mask(r.reporter) if r.reporter is not None else None for r in reports]
        keyed = [r.idempotency_key is not None for r in reports]
        rows = await conn.fetch(
            sql["insert_reports"],
            [r.e164 for r in reports],
            reporters,
            [r.channel if k else None for r, k in zip(reports, keyed, strict=True)],
            [r.category if k else None for r, k in zip(reports, keyed, strict=True)],
            [r.content if k else None for r, k in zip(reports, keyed, strict=True)],
            [t if k else None for t, k in zip(times, keyed, strict=True)],
            [r.idempotency_key for r in reports],
            [f if k else None for (_, f), k in zip(items, keyed, strict=True)],
            [m if k else None for m, k in zip(masked, keyed, strict=True)],
        )
        ids: list[int] = [row["id"] for row in rows]
        kept = [index for index, row in enumerate(rows) if row["kept"]]
        states: dict[PairKey, ReporterState | None] = {}
        for index in kept:
            row = rows[index]
            pair = (reports[index].e164, reporters[index])
            if pair not in states:
                states[pair] = _reporter_state(
                    row["first_reported_at"], row["category"], row["counted_at"]
                )
        wanted = days_to_lock(
            ((reports[i].e164, reporters[i], times[i]) for i in kept),
            numbers,
            states,
            self.day_offset,
        )
        days: dict[DayKey, int] = {}
        if wanted:
            day_keys = list(wanted)
            locked_days = await conn.fetch(
                sql["lock_reporter_days"], [h for h, _ in day_keys], [d for _, d in day_keys]
            )
            days = {(row[0], row[1]): row[2] for row in locked_days}
        group = GroupFold(self.policy, self.daily_cap, self.day_offset, numbers, states, days)
        folded = {
            i: group.add(reports[i].e164, reporters[i], reports[i].category, times[i]) for i in kept
        }
        unused = group.unused_numbers()
        if not kept and not unused:
            return [_KeyTaken() for _ in items], None
        row = await conn.fetchrow(
            sql["save_report_group"],
            *self._write_back(items, reporters, times, masked, ids, folded, group),
            unused,
            *_day_columns(group.day_rows()),
            [reports[i].e164 for i in kept],
            CHANGE_REPORT,
        )
        txid: int | None = row["txid"] if kept else None
        seqs = iter(row["seqs"] or ())
        outcomes: list[RecordedReport | _KeyTaken] = []
        for index, report in enumerate(reports):
            result = folded.get(index)
            if result is None:
                outcomes.append(_KeyTaken())
                continue
            stored = StoredReport(
                ids[index],
                report.e164,
                report.channel,
                report.category,
                report.content,
                times[index],
            )
            outcomes.append(
                RecordedReport(stored, result.number, False, change_seq=next(seqs), txid=txid)
            )
        return outcomes, txid

    @staticmethod
    def _write_back(
        items: list[tuple[NewReport, bytes]],
        reporters: list[bytes],
        times: list[datetime],
        masked: list[str | None],
        ids: list[int],
        folded: Mapping[int, FoldedReport],
        group: GroupFold,
    ) -> list[list[Any]]:
        """The columns of ``save_report_group`` for reports, reporters and numbers ($1-$27)."""
        new: list[list[Any]] = [[] for _ in range(10)]
        counted_keyed: list[int] = []
        for index, (report, fingerprint) in enumerate(items):
            result = folded.get(index)
            if result is None:
                continue
            if report.idempotency_key is not None:  # kept already, as not counted
                if result.counted:
                    counted_keyed.append(ids[index])
                continue
            row: tuple[Any, ...] = (
                ids[index],
                report.e164,
                reporters[index],
                report.channel,
                report.category,
                report.content,
                times[index],
                fingerprint,
                result.counted,
                masked[index],
            )
            _append(new, row)
        pairs: list[list[Any]] = [[] for _ in range(5)]
        for (e164, reporter), state in group.reporter_rows():
            contribution = state.contribution
            row = (
                e164,
                reporter,
                state.first_reported_at,
                contribution.category if contribution is not None else None,
                contribution.counted_at if contribution is not None else None,
            )
            _append(pairs, row)
        aggregates: list[list[Any]] = [[] for _ in range(11)]
        for number in group.number_rows():
            record = number.record
            row = (
                record.e164,
                record.reports,
                record.reporters,
                json.dumps(record.categories),
                record.first_reported_at,
                record.last_reported_at,
                json.dumps(record.weights),
                record.weights_at,
                record.heat_key,
                number.verdict,
                number.verdict_changes_at,
            )
            _append(aggregates, row)
        return [*new, counted_keyed, *pairs, *aggregates]

    def _stored_verdict(
        self, record: NumberRecord, now: datetime, protected: bool
    ) -> tuple[str, datetime | None]:
        """The verdict kept in the row (no call context) and when decay next lowers it."""
        return stored_verdict(record, now, self.policy, protected)

    async def append_change(self, conn: asyncpg.Connection, e164: str, kind: str) -> int:
        """Log a change in the caller's transaction and wake the other nodes at commit."""
        seq: int = await conn.fetchval(self.sql["append_change"], e164, kind)
        return seq

    async def log_change(self, conn: asyncpg.Connection, e164: str, kind: str) -> int:
        """Log a change in the caller's transaction; the caller sends the NOTIFY (or none)."""
        seq: int = await conn.fetchval(self.sql["log_change"], e164, kind)
        return seq

    async def transaction_status(self, txid: int) -> str | None:
        """``committed``, ``aborted`` or ``in progress``; ``None`` if too old to tell."""
        status: str | None = await self.pool.fetchval(self.sql["transaction_status"], str(txid))
        return status

    async def report_by_idempotency_key(self, key: str) -> StoredReport | None:
        row = await self.pool.fetchrow(self.sql["claim_idempotency_key"], key)
        return StoredReport.from_row(row) if row else None

    # SMS intake -------------------------------------------------------------

    async def sms_answer(self, message_id: str) -> dict[str, Any] | None:
        """The answer given to this gateway message, if it was processed already."""
        answer: dict[str, Any] | None = await self.pool.fetchval(
            self.sql["fetch_sms_answer"], message_id
        )
        return answer

    async def record_sms(self, sms: SmsRecord) -> bool:
        """Keep a processed message; False if the same message_id was kept meanwhile."""
        kept = await self.pool.fetchval(
            self.sql["insert_sms_message"],
            sms.message_id,
            sms.short_code,
            sms.sender_hash,
            sms.text,
            sms.gateway_received_at,
            self.clock(),
            sms.error,
            sms.category,
            sms.e164,
            sms.report_id,
            dict(sms.answer),
        )
        return kept is not None

    # API keys ---------------------------------------------------------------

    async def create_api_key(
        self, name: str, role: str, key_hash: bytes, key_prefix: str, rate_limit: str | None
    ) -> asyncpg.Record:
        """Keep a new key's hash and tell every node."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                self.sql["create_api_key"], name, role, key_hash, key_prefix, rate_limit
            )
            await conn.execute(self.sql["notify_api_keys"])
        return row

    async def revoke_api_key(self, key_id: int) -> asyncpg.Record | None:
        """Revoke a key and tell every node; ``None`` if there is no such key."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(self.sql["revoke_api_key"], key_id)
            await conn.execute(self.sql["notify_api_keys"])
        return row

    async def list_api_keys(self) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self.pool.fetch(self.sql["list_api_keys"])
        return rows

    async def active_api_keys(self) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self.pool.fetch(self.sql["active_api_keys"])
        return rows

    @asynccontextmanager
    async def consistent_read(self) -> AsyncIterator[ConsistentRead]:
        """A read-only view of one snapshot of the database."""
        async with (
            self.pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            yield ConsistentRead(conn, self.sql)

    @asynccontextmanager
    async def advisory_lock(self, key: int) -> AsyncIterator[None]:
        """Hold a PostgreSQL advisory lock (one holder across every node) for the block."""
        async with self.pool.acquire() as conn:
            await conn.execute(self.sql["advisory_lock"], key)
            try:
                yield
            finally:
                await conn.execute(self.sql["advisory_unlock"], key)

    async def register_feed_node(self, node_id: str, host: str, pid: int, head: FeedHead) -> None:
        await self.pool.execute(
            self.sql["register_feed_node"],
            node_id,
            host,
            pid,
            str(head.position),
            head.position.xmin,
            head.taken_at,
        )

    async def forget_feed_node(self, node_id: str) -> None:
        await self.pool.execute(self.sql["forget_feed_node"], node_id)

    async def prune_changes(self, node_timeout: float, retention: float) -> int:
        """Delete the changes no live node lacks; how many went."""
        deleted: int = await self.pool.fetchval(self.sql["prune_changes"], node_timeout, retention)
        return deleted

    async def newest_filter_snapshot(self) -> StoredFilter | None:
        row = await self.pool.fetchrow(self.sql["newest_filter_snapshot"])
        if row is None:
            return None
        return StoredFilter(
            id=row["id"],
            created_at=row["created_at"],
            generation=row["generation"],
            position=FeedPosition.parse(row["position"]),
            hashing=row["hashing"],
            capacity=row["capacity"],
            error_rate=row["error_rate"],
            num_slices=row["num_slices"],
            bits_per_slice=row["bits_per_slice"],
            items=row["items"],
            size=row["size"],
        )

    async def filter_snapshot_bits(self, snapshot_id: int) -> bytes | None:
        bits: bytes | None = await self.pool.fetchval(self.sql["filter_snapshot_bits"], snapshot_id)
        return bits

    async def save_filter_snapshot(self, stored: StoredFilter, bits: bytes) -> None:
        """Keep a filter for new nodes (``stored.id`` is ignored); older snapshots go."""
        await self.pool.execute(
            self.sql["save_filter_snapshot"],
            stored.generation,
            str(stored.position),
            stored.position.xmin,
            stored.position.xmax,
            stored.hashing,
            stored.capacity,
            stored.error_rate,
            stored.num_slices,
            stored.bits_per_slice,
            stored.items,
            bits,
        )

    async def existing_idempotency_keys(self, keys: list[str]) -> set[str]:
        """Which of these Idempotency-Keys are taken (a re-run import skips them)."""
        rows = await self.pool.fetch(self.sql["existing_idempotency_keys"], keys)
        return {row[0] for row in rows}

    async def all_numbers(self, batch_size: int) -> AsyncIterator[list[NumberRecord]]:
        """Every known number's aggregate, in batches, through a server-side cursor."""
        async with self.pool.acquire() as conn, conn.transaction(readonly=True):
            cursor = await conn.cursor(self.sql["export_numbers"])
            while rows := await cursor.fetch(batch_size):
                yield [NumberRecord.from_row(row) for row in rows]

    async def feed_nodes(self) -> list[FeedNode]:
        """The nodes following the change feed, as they last reported (status page)."""
        rows = await self.pool.fetch(self.sql["feed_nodes_status"])
        return [FeedNode(**dict(row)) for row in rows]

    async def reports_per_minute(self, since: datetime) -> dict[datetime, int]:
        """Reports received by every node in each minute since ``since`` (status page)."""
        rows = await self.pool.fetch(self.sql["reports_per_minute"], since)
        return {row["minute"]: row["reports"] for row in rows}

    async def top_reported(self, since: datetime, limit: int) -> list[tuple[str, int, int]]:
        """``(number, reports, reporters)`` of the most reported numbers since ``since``."""
        rows = await self.pool.fetch(self.sql["top_reported_since"], since, limit)
        return [(row["e164"], row["reports"], row["reporters"]) for row in rows]

    # -- The published list: exports and the range index -----------------------

    @asynccontextmanager
    async def list_export(self, since: ListVersion | None) -> AsyncIterator[ListExport]:
        """A consistent read of the published list: the whole of it, or what changed since.

        One REPEATABLE READ snapshot covers the version and every row read, so
        the version handed out (that snapshot) is exactly what was read.
        """
        async with (
            self.pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            row = await conn.fetchrow(self.sql["list_version"])
            if since is not None and since.xmax > row["newest"]:
                raise VersionUnknown()
            yield ListExport(row["version"], since, conn, self.sql)

    async def ping(self) -> bool | None:
        """True if PostgreSQL answers, False if it cannot be reached, None if it is only slow.

        A node under load may wait more than a second for a free connection:
        that says nothing about the database being down.
        """
        try:
            async with self.pool.acquire(timeout=1.0) as conn:
                result: Any = await conn.fetchval(self.sql["ping"], timeout=1.0)
                return bool(result == 1)
        except TimeoutError:
            return None
        except (OSError, asyncpg.PostgresError):
            return False

    # -- Analysts: statuses and the audit trail ------------------------------

    async def set_status(
        self, e164: str, status: str, note: str, actor: str
    ) -> tuple[NumberRecord, AuditEntry]:
        """An analyst's decision about a number, its audit entry and change-log row, at once."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(self.sql["ensure_number"], e164)
            return await self._change_status(conn, e164, status, note, actor, self.clock())

    async def _change_status(
        self,
        conn: asyncpg.Connection,
        e164: str,
        status: str,
        note: str,
        actor: str,
        now: datetime,
    ) -> tuple[NumberRecord, AuditEntry]:
        sql = self.sql
        locked = await conn.fetchrow(sql["lock_number"], e164, None)
        record = NumberRecord.from_row(locked)
        previous = record.status
        cleared_at: datetime | None = None
        if status == "cleared":
            # Clearing starts the evidence afresh: only reporters new since count.
            cleared_at = now
            record = dataclasses.replace(record, weights={}, weights_at=now)
        elif previous == "cleared":
            rows = await conn.fetch(sql["number_contributions"], e164, None)
            contributions = (Contribution(r["category"], r["counted_at"]) for r in rows)
            weights = evidence.weights_from(contributions, now, self.policy.half_life_days)
            record = dataclasses.replace(record, weights=weights, weights_at=now)
        record = dataclasses.replace(record, status=status)
        verdict, changes_at = self._stored_verdict(record, now, locked["protected"])
        await conn.execute(
            sql["save_number_status"],
            e164,
            status,
            cleared_at,
            record.weights,
            record.weights_at,
            verdict,
            changes_at,
        )
        entry = await conn.fetchrow(
            sql["insert_audit"], e164, "status", actor, previous, status, note, now
        )
        await self.append_change(conn, e164, CHANGE_STATUS)
        return record, AuditEntry.from_row(entry)

    async def history(self, e164: str, after_id: int | None, limit: int) -> list[AuditEntry]:
        rows = await self.pool.fetch(
            self.sql["number_history"], e164, after_id if after_id is not None else _NO_ID, limit
        )
        return [AuditEntry.from_row(row) for row in rows]

    async def number_reports(
        self, e164: str, before_id: int | None, limit: int
    ) -> list[ListedReport]:
        rows = await self.pool.fetch(
            self.sql["number_reports"],
            e164,
            before_id if before_id is not None else _ANY_ID,
            limit,
        )
        return [ListedReport.from_row(row) for row in rows]

    # -- Analysts: the review queue -------------------------------------------

    async def review_queue(
        self,
        order: str,
        *,
        status: str | None,
        category: str | None,
        verdict: str | None,
        appealed: bool,
        after: tuple[Any, str] | None,
        limit: int,
    ) -> list[QueueEntry]:
        """One page of numbers in ``order``, strictly after the cursor ``after`` (key, e164).

        Keyset pagination on an index: the cost of a page does not grow with
        its depth, and rows added meanwhile never shift or repeat later pages.
        """
        query, first_bound = QUEUE_ORDERS[order]
        if appealed or (status is not None and status != "reported"):
            query += "_reviewed"
        key, e164 = after if after is not None else (first_bound, "")
        rows = await self.pool.fetch(
            self.sql[query], status, category, verdict, appealed, key, e164, limit
        )
        return [
            QueueEntry(NumberRecord.from_row(row), row["verdict"], row["open_appeal_id"])
            for row in rows
        ]

    # -- Decay: stored verdicts kept true as time passes ----------------------

    async def sweep_due_verdicts(self, limit: int) -> tuple[int, list[str]]:
        """Re-judge up to ``limit`` numbers whose verdict decay has changed.

        Returns how many were due and the new verdict of each one that moved
        (each with a change-log row). One node sweeps at a time.
        """
        now = self.clock()
        sql = self.sql
        async with self.pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval(sql["try_sweep_lock"], SWEEP_LOCK_KEY):
                return 0, []
            rows = await conn.fetch(sql["due_verdicts"], now, limit)
            updates, moved = [], []
            for row in rows:
                record = NumberRecord.from_row(row)
                verdict, changes_at = self._stored_verdict(record, now, row["protected"])
                updates.append((record.e164, verdict, changes_at))
                if verdict != row["verdict"]:
                    moved.append((record.e164, verdict))
            if updates:
                await conn.executemany(sql["save_verdict"], updates)
            for e164, _ in moved:
                await self.append_change(conn, e164, CHANGE_DECAY)
        return len(rows), [verdict for _, verdict in moved]

    async def rejudge_if_policy_changed(self, batch_size: int) -> list[str] | None:
        """Re-judge every number once after the verdict settings changed.

        Returns the numbers whose stored verdict moved (each with a change-log
        row), or None when the stored verdicts already follow this policy.
        """
        fingerprint = self.policy.fingerprint()
        if await self.pool.fetchval(self.sql["get_state"], POLICY_STATE) == fingerprint:
            return None
        moved: list[str] = []
        last = ""
        async with self.pool.acquire() as conn:
            while True:
                async with conn.transaction():
                    rows = await conn.fetch(self.sql["numbers_after"], last, batch_size)
                    if not rows:
                        break
                    moved += await self._rejudge_rows(conn, rows)
                    last = rows[-1]["e164"]
            await conn.execute(self.sql["set_state"], POLICY_STATE, fingerprint)
        return moved

    async def _rejudge_rows(
        self, conn: asyncpg.Connection, rows: list[asyncpg.Record]
    ) -> list[str]:
        now = self.clock()
        updates, moved = [], []
        for row in rows:
            record = NumberRecord.from_row(row)
            verdict, changes_at = self._stored_verdict(record, now, row["protected"])
            if verdict != row["verdict"] or changes_at != row["verdict_changes_at"]:
                updates.append((record.e164, verdict, changes_at))
            if verdict != row["verdict"]:
                moved.append(record.e164)
        if updates:
            await conn.executemany(self.sql["save_verdict"], updates)
        for e164 in moved:
            await self.append_change(conn, e164, CHANGE_POLICY)
        return moved

    # -- Appeals ----------------------------------------------------------------

    async def open_appeal(
        self, e164: str, contact: str, reason: str, actor: str
    ) -> tuple[Appeal, bool]:
        """Open an appeal; the same appeal again returns the open one (``False``: not new)."""
        sql = self.sql
        now = self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            if await conn.fetchrow(sql["lock_number"], e164, None) is None:
                raise NotFound(
                    "Nothing is known about this number: there is nothing to appeal.",
                    code="number_not_listed",
                )
            existing = await conn.fetchrow(sql["open_appeal"], e164)
            if existing is not None:
                appeal = Appeal.from_row(existing)
                if (appeal.contact, appeal.reason) == (contact, reason):
                    return appeal, False
                raise Conflict(
                    "This number already has an open appeal.",
                    code="appeal_already_open",
                    appeal_id=appeal.id,
                )
            row = await conn.fetchrow(sql["insert_appeal"], e164, contact, reason, actor, now)
            await conn.execute(sql["set_open_appeal"], e164, row["id"])
            await conn.execute(
                sql["insert_audit"], e164, "appeal", actor, None, "open", f"appeal {row['id']}", now
            )
        return Appeal.from_row(row), True

    async def resolve_appeal(
        self, appeal_id: int, decision: str, note: str, actor: str
    ) -> tuple[Appeal, tuple[NumberRecord, AuditEntry] | None]:
        """Close an appeal; ``accepted`` also clears the number (unless allowlisted).

        Returns the appeal and, when the number's status moved, its new
        aggregate with the audit entry of that change.
        """
        sql = self.sql
        now = self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            found = await conn.fetchrow(sql["appeal_number"], appeal_id)
            if found is None:
                raise NotFound("No such appeal.", code="appeal_not_found")
            # Lock the number before the appeal, in the order opening an appeal does.
            locked = await conn.fetchrow(sql["lock_number"], found["e164"], None)
            current = Appeal.from_row(await conn.fetchrow(sql["lock_appeal"], appeal_id))
            if current.status != "open":
                raise Conflict(f"This appeal was already {current.status}.", code="appeal_resolved")
            row = await conn.fetchrow(sql["resolve_appeal"], appeal_id, decision, actor, now, note)
            await conn.execute(sql["set_open_appeal"], current.e164, None)
            await conn.execute(
                sql["insert_audit"], current.e164, "appeal", actor, "open", decision, note, now
            )
            cleared = None
            if decision == "accepted" and locked["status"] != "allowlisted":
                why = f"appeal {appeal_id} accepted: {note}"
                cleared = await self._change_status(conn, current.e164, "cleared", why, actor, now)
        return Appeal.from_row(row), cleared

    async def appeals(self, status: str | None, after_id: int | None, limit: int) -> list[Appeal]:
        rows = await self.pool.fetch(
            self.sql["list_appeals"], status, after_id if after_id is not None else _NO_ID, limit
        )
        return [Appeal.from_row(row) for row in rows]

    async def count_open_appeals(self) -> int:
        count: int = await self.pool.fetchval(self.sql["count_open_appeals"])
        return count

    # -- Protected numbers ------------------------------------------------------

    async def protected_keys(self) -> set[str]:
        """Every protected number, for the in-memory set of each node."""
        return {row[0] for row in await self.pool.fetch(self.sql["protected_keys"])}

    async def protected_numbers(self, after: str | None, limit: int) -> list[ProtectedNumber]:
        rows = await self.pool.fetch(self.sql["list_protected"], after or "", limit)
        return [ProtectedNumber.from_row(row) for row in rows]

    async def protect(
        self, e164: str, name: str, note: str | None, actor: str
    ) -> tuple[ProtectedNumber, bool, NumberRecord | None]:
        """Protect a number or rename it: (entry, newly protected, number's aggregate if known)."""
        sql = self.sql
        now = self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            before = await conn.fetchrow(sql["get_protected"], e164)
            if before is not None and (before["name"], before["note"]) == (name, note):
                record = await conn.fetchrow(sql["fetch_number"], e164)
                return (
                    ProtectedNumber.from_row(before),
                    False,
                    NumberRecord.from_row(record) if record else None,
                )
            row = await conn.fetchrow(sql["upsert_protected"], e164, name, note, actor, now)
            await conn.execute(
                sql["insert_audit"],
                e164,
                "protect",
                actor,
                before["name"] if before is not None else None,
                name,
                note,
                now,
            )
            record = await self._rejudge_number(conn, e164, now)
            await self.append_change(conn, e164, CHANGE_PROTECTED)
        return ProtectedNumber.from_row(row), before is None, record

    async def unprotect(
        self, e164: str, note: str | None, actor: str
    ) -> tuple[ProtectedNumber, NumberRecord | None]:
        """Stop protecting a number: (the entry removed, the number's aggregate if known)."""
        sql = self.sql
        now = self.clock()
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(sql["delete_protected"], e164)
            if row is None:
                raise NotFound("This number is not protected.", code="not_protected")
            await conn.execute(
                sql["insert_audit"], e164, "unprotect", actor, row["name"], None, note, now
            )
            record = await self._rejudge_number(conn, e164, now)
            await self.append_change(conn, e164, CHANGE_PROTECTED)
        return ProtectedNumber.from_row(row), record

    async def load_protected(
        self, entries: list[tuple[str, str, str | None]], actor: str, *, replace: bool
    ) -> dict[str, int]:
        """Apply a protected list (number, name, note) in one transaction; counts per outcome.

        With ``replace``, numbers missing from the list stop being protected.
        """
        sql = self.sql
        now = self.clock()
        counts = {"added": 0, "updated": 0, "unchanged": 0, "removed": 0}
        wanted = {e164 for e164, _, _ in entries}
        async with self.pool.acquire() as conn, conn.transaction():
            for e164, name, note in entries:
                before = await conn.fetchrow(sql["get_protected"], e164)
                if before is not None and (before["name"], before["note"]) == (name, note):
                    counts["unchanged"] += 1
                    continue
                await conn.execute(sql["upsert_protected"], e164, name, note, actor, now)
                await conn.execute(
                    sql["insert_audit"],
                    e164,
                    "protect",
                    actor,
                    before["name"] if before is not None else None,
                    name,
                    note,
                    now,
                )
                await self._rejudge_number(conn, e164, now)
                await self.append_change(conn, e164, CHANGE_PROTECTED)
                counts["added" if before is None else "updated"] += 1
            if replace:
                current = {row[0] for row in await conn.fetch(sql["protected_keys"])}
                for e164 in sorted(current - wanted):
                    row = await conn.fetchrow(sql["delete_protected"], e164)
                    await conn.execute(
                        sql["insert_audit"], e164, "unprotect", actor, row["name"], None, None, now
                    )
                    await self._rejudge_number(conn, e164, now)
                    await self.append_change(conn, e164, CHANGE_PROTECTED)
                    counts["removed"] += 1
        return counts

    async def _rejudge_number(
        self, conn: asyncpg.Connection, e164: str, now: datetime
    ) -> NumberRecord | None:
        """Store the verdict of a number whose protection changed (None: not a known number)."""
        locked = await conn.fetchrow(self.sql["lock_number"], e164, None)
        if locked is None:
            return None
        record = NumberRecord.from_row(locked)
        verdict, changes_at = self._stored_verdict(record, now, locked["protected"])
        await conn.execute(self.sql["save_verdict"], e164, verdict, changes_at)
        return record


def _reporter_state(
    first_reported_at: datetime | None, category: str | None, counted_at: datetime | None
) -> ReporterState | None:
    """What a number's reporter row says (all None: no row, the reporter is new to the number)."""
    if first_reported_at is None:
        return None
    if counted_at is None or category is None:
        return ReporterState(first_reported_at, None)
    return ReporterState(first_reported_at, Contribution(category, counted_at))


def _append(columns: list[list[Any]], values: tuple[Any, ...]) -> None:
    """Add one row to statement parameters kept as one array per column."""
    for column, value in zip(columns, values, strict=True):
        column.append(value)


def _day_columns(rows: list[tuple[DayKey, int]]) -> list[list[Any]]:
    """The reporter-day columns of ``save_report_group`` ($29-$31)."""
    return [
        [reporter for (reporter, _), _ in rows],
        [day for (_, day), _ in rows],
        [count for _, count in rows],
    ]
