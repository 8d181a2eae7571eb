from __future__ import annotations

from reputation.cache import HotCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_least_recently_used_goes_first() -> None:
    cache: HotCache[int] = HotCache(2, ttl=60)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "b" is now the oldest
    cache.put("c", 3)
    assert cache.get("b") is None
    assert cache.get("a") == 1
    assert cache.get("c") == 3
    assert len(cache) == 2


def test_entries_expire() -> None:
    clock = Clock()
    cache: HotCache[int] = HotCache(10, ttl=5, clock=clock)
    cache.put("a", 1)
    clock.now = 4.9
    assert cache.get("a") == 1
    clock.now = 5.1
    assert cache.get("a") is None
    assert "a" not in cache


def test_hits_misses_and_invalidation() -> None:
    cache: HotCache[int] = HotCache(10, ttl=60)
    cache.put("a", 1)
    cache.get("a")
    cache.get("b")
    cache.invalidate("a")
    cache.get("a")
    assert (cache.hits, cache.misses) == (1, 2)


def test_zero_size_keeps_nothing() -> None:
    cache: HotCache[int] = HotCache(0, ttl=60)
    cache.put("a", 1)
    assert cache.get("a") is None
