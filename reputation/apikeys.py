"""API keys: how they are made, stored (as hashes only) and known to every node.

A key is ``rep_`` and 43 URL-safe characters (256 random bits). The database
keeps only its SHA-256: a key that random cannot be guessed from its hash, so
a slow password hash would add nothing but latency.

Each node holds the active keys in memory (``KeyRing``), so checking a key
never waits on PostgreSQL and keeps working while PostgreSQL is away. The
ring is re-read when the key commands NOTIFY ``reputation_api_keys`` (at once),
and every ``key_refresh_interval`` seconds whatever happens, so a revoked key
stops working on every node within that interval even if a notification is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import asyncpg

from reputation.constants import API_KEYS_CHANNEL
from reputation.store import Store

logger = logging.getLogger(__name__)

KEY_PREFIX = "rep_"
# What an API key can look like; anything else is refused before it is hashed.
_KEY_SHAPE = re.compile(r"[A-Za-z0-9_\-]{16,128}")
# How the LISTEN connection for key changes shows in pg_stat_activity.
LISTEN_APPLICATION_NAME = "reputation api keys"
# Spellings of one key's header remembered ("Bearer k", "bearer k", ...).
MAX_HEADER_SPELLINGS = 4
# Characters of a key shown by `keys list` so that an operator can tell keys apart.
SHOWN_KEY_CHARS = 8


def new_key() -> str:
    """A fresh API key, shown once to whoever creates it and never stored."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def plausible_key(text: str) -> bool:
    return _KEY_SHAPE.fullmatch(text) is not None


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """One row of ``api_keys``, without the secret (which is never kept)."""

    id: int
    name: str
    role: str
    key_prefix: str
    rate_limit: str | None
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ApiKeyRecord:
        return cls(
            id=row["id"],
            name=row["name"],
            role=row["role"],
            key_prefix=row["key_prefix"],
            rate_limit=row["rate_limit"],
            created_at=row["created_at"],
            revoked_at=row["revoked_at"],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "key_prefix": self.key_prefix,
            "rate_limit": self.rate_limit,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


Known = TypeVar("Known")


class KeyRing(Generic[Known]):
    """The active API keys of the deployment, in this node's memory.

    ``build`` turns a key's row into what the node needs at each request
    (the caller's identity and rate), once per reload rather than per request.
    """

    def __init__(self, build: Callable[[ApiKeyRecord], Known]) -> None:
        self.build = build
        self._by_hash: dict[bytes, Known] = {}
        # Authorization headers already read once, so the hot path is one dict
        # lookup. Only headers holding an active key enter it, a few at most per key.
        self._by_header: dict[str, Known] = {}
        self.loaded = False

    def find(self, key: str) -> Known | None:
        """The active key ``key``, if it is one."""
        return self._by_hash.get(key_hash(key)) if plausible_key(key) else None

    def find_header(self, header: str) -> Known | None:
        """The active key of an ``Authorization: Bearer <key>`` header value, if any."""
        known = self._by_header.get(header)
        if known is None:
            scheme, _, key = header.strip().partition(" ")
            if scheme.lower() == "bearer":
                known = self.find(key.strip())
            if known is not None and len(self._by_header) < MAX_HEADER_SPELLINGS * (1 + len(self)):
                self._by_header[header] = known
        return known

    def replace(self, records: Iterable[ApiKeyRecord], hashes: Iterable[bytes]) -> None:
        """Swap in a new set of active keys (one assignment: lookups never see half a set)."""
        by_hash = {
            digest: self.build(record) for record, digest in zip(records, hashes, strict=True)
        }
        self._by_hash, self._by_header = by_hash, {}
        self.loaded = True

    def __len__(self) -> int:
        return len(self._by_hash)

    async def reload(self, store: Store) -> None:
        rows = await store.active_api_keys()
        self.replace([ApiKeyRecord.from_row(row) for row in rows], [r["key_hash"] for r in rows])

    async def watch(self, store: Store, dsn: str, interval: float) -> None:
        """Re-read the keys on each NOTIFY and every ``interval`` seconds, until cancelled."""
        wake = asyncio.Event()
        listener: asyncpg.Connection | None = None
        failing = False
        try:
            while True:
                try:
                    if listener is None or listener.is_closed():
                        listener = await asyncpg.connect(
                            dsn,
                            timeout=interval * 5,
                            server_settings={"application_name": LISTEN_APPLICATION_NAME},
                        )
                        await listener.add_listener(API_KEYS_CHANNEL, lambda *_: wake.set())
                    wake.clear()
                    await self.reload(store)
                    if failing:
                        logger.info("API keys are read from the database again")
                    failing = False
                except (
                    OSError,
                    asyncpg.PostgresError,
                    asyncpg.InterfaceError,
                    TimeoutError,
                ) as exc:
                    if not failing:
                        logger.warning(
                            "cannot re-read the API keys (%s); keeping the last set", exc
                        )
                    failing = True
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(interval):
                        await wake.wait()
        finally:
            if listener is not None:
                await listener.close(timeout=1)
