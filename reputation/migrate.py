"""Bring a database to the current schema by applying the numbered SQL migrations."""

from __future__ import annotations

import logging

import asyncpg

from reputation.queries import migrations

logger = logging.getLogger(__name__)

# pg_advisory_lock key held while migrating, so that nodes starting together
# apply each migration once ("reputation" as a 64-bit number).
MIGRATION_LOCK_KEY = 0x7265707574617469


async def applied_versions(conn: asyncpg.Connection) -> set[int]:
    if await conn.fetchval("SELECT to_regclass('schema_migrations')") is None:
        return set()
    return {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}


async def migrate(conn: asyncpg.Connection) -> list[int]:
    """Apply every pending migration, each in its own transaction; returns the versions applied."""
    applied: list[int] = []
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        done = await applied_versions(conn)
        for version, name, sql in migrations():
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name
                )
            logger.info("applied migration %04d_%s", version, name)
            applied.append(version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
    return applied
