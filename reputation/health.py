"""What a node believes about PostgreSQL, so that an outage costs lookups nothing.

While the database is down, lookup misses are answered from memory at once
(degraded) instead of each waiting for a connection to fail; one call per
``retry_after`` seconds probes it, and the change feed probes it on its timer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

import asyncpg

# Errors that mean "PostgreSQL cannot be used right now" rather than "this
# query is wrong": refused or lost connections, timeouts, a server shutting
# down or starting up, no connection slot left.
UNAVAILABLE: Final[tuple[type[BaseException], ...]] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    # What asyncpg raises when a connection dies in the middle of a transaction.
    asyncpg.InternalClientError,
)


class DatabaseHealth:
    """Up or down, with the time of the next probe while down."""

    def __init__(self, retry_after: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.retry_after = retry_after
        self.clock = clock
        self.up = True
        self.down_since: float | None = None
        self._next_probe = 0.0
        # Times PostgreSQL was found down after being up, since the node started.
        self.outages = 0

    def failed(self) -> None:
        """A call found PostgreSQL unusable."""
        now = self.clock()
        if self.up:
            self.up = False
            self.down_since = now
            self.outages += 1
        self._next_probe = now + self.retry_after

    def succeeded(self) -> None:
        """A call reached PostgreSQL."""
        self.up = True
        self.down_since = None

    def worth_trying(self) -> bool:
        """Should a call try PostgreSQL now? While down, yes once per ``retry_after``."""
        if self.up:
            return True
        now = self.clock()
        if now >= self._next_probe:
            self._next_probe = now + self.retry_after
            return True
        return False

    def down_for(self) -> float:
        """Seconds since PostgreSQL was last found down (0 while up)."""
        return 0.0 if self.down_since is None else self.clock() - self.down_since
