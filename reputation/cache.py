"""The hot cache: recent lookup answers kept in memory, least recently used out first."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class HotCache(Generic[V]):
    """A bounded LRU map whose entries expire ``ttl`` seconds after they were stored.

    Expiry bounds how stale a cached answer can get (scores decay with time and
    other nodes may change a number); the change feed invalidates entries
    sooner when it knows better.
    """

    def __init__(
        self, max_size: int, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_size = max(0, max_size)
        self.ttl = ttl
        self.clock = clock
        self._entries: OrderedDict[str, tuple[float, V]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        expires, value = entry
        if expires < self.clock():
            # Kept (until evicted) as the last known answer, for when Postgres is down.
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: str, value: V) -> None:
        if self.max_size == 0:
            return
        self._entries[key] = (self.clock() + self.ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_size:
            self._entries.popitem(last=False)

    def last_known(self, key: str) -> V | None:
        """The value stored for ``key`` even if expired: better than nothing in an outage."""
        entry = self._entries.get(key)
        return entry[1] if entry is not None else None

    def expire(self, key: str) -> None:
        """Stop serving ``key`` (it changed) but keep it as the last known value."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries[key] = (-math.inf, entry[1])

    def invalidate(self, key: str) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        """Is there a fresh entry for ``key``?"""
        entry = self._entries.get(key)
        return entry is not None and entry[0] >= self.clock()
