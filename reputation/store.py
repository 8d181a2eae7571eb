"""Every call to PostgreSQL, through the named queries of ``sql/queries.sql``."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from reputation import privacy
from reputation.errors import IdempotencyConflict
from reputation.queries import queries
from reputation.records import NewReport, NumberRecord, StoredReport
from reputation.settings import Settings

Clock = Callable[[], datetime]


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


def request_fingerprint(key: bytes, report: NewReport) -> bytes:
    """What an Idempotency-Key stands for: a replay must carry the same report.

    Keyed like the reporter hash: a plain digest of a body that holds the
    reporter's number could be reversed by trying every number.
    """
    canonical = json.dumps(
        [report.e164, report.reporter, report.channel, report.category, report.content]
    )
    return hmac.new(key, canonical.encode(), hashlib.sha256).digest()


class _KeyTaken(Exception):
    """Another transaction stored a report with the same Idempotency-Key first."""


class Store:
    """The service's view of PostgreSQL; the only module that runs SQL."""

    def __init__(self, pool: asyncpg.Pool, reporter_key: bytes, clock: Clock) -> None:
        self.pool = pool
        self.reporter_key = reporter_key
        self.clock = clock
        self.sql = queries()

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
            return await self._insert_report(report, fingerprint)
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

    async def _insert_report(self, report: NewReport, fingerprint: bytes) -> RecordedReport:
        reporter = privacy.reporter_hash(self.reporter_key, report.reporter, report.channel)
        now = self.clock()
        sql = self.sql
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(sql["ensure_number"], report.e164)
            row = await conn.fetchrow(
                sql["insert_report"],
                report.e164,
                reporter,
                report.channel,
                report.category,
                report.content,
                now,
                report.idempotency_key,
                fingerprint,
            )
            if row is None:
                raise _KeyTaken()
            new_reporter = await conn.fetchval(
                sql["add_number_reporter"], report.e164, reporter, now
            )
            number_row = await conn.fetchrow(
                sql["count_report"], report.e164, int(bool(new_reporter)), report.category, now
            )
            await self.append_change(conn, report.e164, "report")
        return RecordedReport(
            StoredReport.from_row(row), NumberRecord.from_row(number_row), replayed=False
        )

    async def append_change(self, conn: asyncpg.Connection, e164: str, kind: str) -> int:
        """Log a change in the caller's transaction and wake the other nodes at commit."""
        seq: int = await conn.fetchval(self.sql["append_change"], e164, kind)
        await conn.execute(self.sql["notify_changes"], str(seq))
        return seq

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

    async def ping(self) -> bool:
        try:
            async with self.pool.acquire(timeout=1.0) as conn:
                result: Any = await conn.fetchval(self.sql["ping"], timeout=1.0)
                return bool(result == 1)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return False
