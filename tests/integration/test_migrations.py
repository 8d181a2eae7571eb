"""Applying every migration in order gives exactly the schema of ``sql/schema.sql``."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from reputation.migrate import migrate
from reputation.queries import migrations, queries, schema
from tests.conftest import with_database

# Everything a schema is made of, as comparable text (names, types, defaults,
# constraints, indexes, functions, triggers).
DESCRIBE_SCHEMA = """
SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' null='
       || is_nullable || ' default=' || coalesce(column_default, '') || ' identity='
       || is_identity
FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL
SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL
SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'function ' || pg_get_functiondef(p.oid)
FROM pg_proc p WHERE pronamespace = 'public'::regnamespace
UNION ALL
SELECT 'trigger ' || pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal
ORDER BY 1
"""


@pytest.fixture
async def create_database(postgres_server_url: str) -> AsyncIterator[Callable[[], Awaitable[str]]]:
    """Makes empty databases (their URLs), dropped after the test."""
    admin = await asyncpg.connect(postgres_server_url)
    names: list[str] = []

    async def create() -> str:
        names.append(f"reputation_empty_{uuid.uuid4().hex[:10]}")
        await admin.execute(f'CREATE DATABASE "{names[-1]}"')
        return with_database(postgres_server_url, names[-1])

    yield create
    for name in names:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    await admin.close()


@pytest.fixture
async def empty_database(
    create_database: Callable[[], Awaitable[str]],
) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(await create_database())
    yield conn
    await conn.close()


async def describe(conn: asyncpg.Connection) -> list[str]:
    return [row[0] for row in await conn.fetch(DESCRIBE_SCHEMA)]


async def test_migrations_give_schema_sql(
    empty_database: asyncpg.Connection, create_database: Callable[[], Awaitable[str]]
) -> None:
    await migrate(empty_database)
    from_schema = await asyncpg.connect(await create_database())
    try:
        await from_schema.execute(schema())
        assert await describe(empty_database) == await describe(from_schema)
    finally:
        await from_schema.close()


async def test_migrating_twice_applies_nothing(empty_database: asyncpg.Connection) -> None:
    applied = await migrate(empty_database)
    assert applied == [version for version, _, _ in migrations()]
    assert await migrate(empty_database) == []


async def test_concurrent_migrations_apply_each_version_once(
    create_database: Callable[[], Awaitable[str]],
) -> None:
    url = await create_database()
    conns = [await asyncpg.connect(url) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate(conn) for conn in conns))
    finally:
        for conn in conns:
            await conn.close()
    applied = sorted(v for result in results for v in result)
    assert applied == [version for version, _, _ in migrations()]


async def test_every_named_query_is_valid_sql(empty_database: asyncpg.Connection) -> None:
    await migrate(empty_database)
    for name, sql in queries().items():
        try:
            await empty_database.prepare(sql)
        except asyncpg.PostgresError as exc:  # pragma: no cover - the failure message
            pytest.fail(f"query {name}: {exc}")


async def test_verdict_migration_carries_existing_reports_over(
    empty_database: asyncpg.Connection,
) -> None:
    """Numbers reported before decayed evidence existed keep their reporters, weighed by age."""
    conn = empty_database
    version, name, initial = migrations()[0]
    await conn.execute(initial)
    await conn.execute(
        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name
    )
    await conn.execute(
        """
        INSERT INTO numbers (e164, reports, reporters, categories)
        VALUES ('+84912345678', 3, 2, '{"scam": 2, "spam_call": 1}');
        INSERT INTO reports (e164, reporter_hash, channel, category, received_at) VALUES
            ('+84912345678', 'a', 'api', 'scam', now() - interval '90 days'),
            ('+84912345678', 'a', 'api', 'spam_call', now() - interval '1 day'),
            ('+84912345678', 'b', 'sms', 'scam', now());
        INSERT INTO number_reporters (e164, reporter_hash, first_reported_at) VALUES
            ('+84912345678', 'a', now() - interval '90 days'),
            ('+84912345678', 'b', now());
        """
    )
    await migrate(conn)
    row = await conn.fetchrow("SELECT weights, heat_key FROM numbers")
    weights = json.loads(row["weights"])
    assert weights == {"scam": pytest.approx(1.5, abs=1e-6)}  # 0.5 (90 days old) + 1
    assert row["heat_key"] > 0
    counted = await conn.fetch("SELECT reporter_hash FROM reports WHERE counted ORDER BY id")
    assert [bytes(r[0]) for r in counted] == [b"a", b"b"]
    categories = await conn.fetch("SELECT category FROM number_reporters ORDER BY reporter_hash")
    assert [r[0] for r in categories] == ["scam", "scam"]
