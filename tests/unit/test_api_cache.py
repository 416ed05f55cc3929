"""The API's cache of non-personalized answers (api/cache.py): fresh, then served stale while one
background load refreshes it; one load per cold key; failures and erasures."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from api import cache as cache_module
from api.cache import Cached


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def counting(values: list[int]) -> Callable[[], int]:
    def load() -> int:
        values.append(len(values) + 1)
        return values[-1]

    return load


def wait_idle(cache: Cached[Any], key: str) -> None:
    """Until no load of ``key`` is in flight."""
    with cache._changed:
        assert cache._changed.wait_for(lambda: key not in cache._loading, 5)


class Blocking:
    """A load that returns ``value`` once :attr:`release` is set; :attr:`started` says it
    runs, :attr:`calls` counts its runs."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.started, self.release = threading.Event(), threading.Event()
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        self.started.set()
        self.release.wait(5)
        return self.value


def test_fresh_value_is_served_without_a_load() -> None:
    clock, calls = Clock(), []
    cache: Cached[int] = Cached("t", ttl_s=60, clock=clock)
    assert cache.get("a", counting(calls)) == 1
    clock.now = 59.9
    assert cache.get("a", counting(calls)) == 1
    assert calls == [1]


def test_expired_value_is_served_at_once_while_one_background_load_refreshes_it() -> None:
    clock = Clock()
    cache: Cached[str] = Cached("t", ttl_s=60, clock=clock)
    assert cache.get("p", lambda: "old") == "old"
    clock.now = 61.0
    slow = Blocking("new")
    # every request during the refresh gets the old value without waiting; one load runs
    assert [cache.get("p", slow) for _ in range(20)] == ["old"] * 20
    assert slow.started.wait(5)
    assert slow.calls == 1
    slow.release.set()
    wait_idle(cache, "p")
    assert cache.get("p", slow) == "new"  # fresh again: no second load
    assert slow.calls == 1


def test_concurrent_misses_of_one_key_load_it_once() -> None:
    """A burst of requests on a cold key (the popular items at scale: a query of a second or
    more) sends one query; the others wait for it and get its value. Another key loads beside
    it."""
    cache: Cached[str] = Cached("t", ttl_s=60.0)
    load = Blocking("value of p")
    got: list[str] = []
    threads = [threading.Thread(target=lambda: got.append(cache.get("p", load))) for _ in range(8)]
    for t in threads:
        t.start()
    assert load.started.wait(5)
    assert cache.get("q", lambda: "other key") == "other key"  # not blocked by p's load
    load.release.set()
    for t in threads:
        t.join(5)
    assert got == ["value of p"] * 8
    assert load.calls == 1


def test_a_failed_first_load_raises_and_the_next_caller_retries() -> None:
    cache: Cached[int] = Cached("t", ttl_s=60.0)

    def fail() -> int:
        raise RuntimeError("neo4j down")

    with pytest.raises(RuntimeError):
        cache.get("k", fail)
    assert cache.get("k", lambda: 7) == 7


def test_a_failed_refresh_keeps_the_old_value_and_retries_after_a_pause() -> None:
    clock, calls = Clock(), []
    cache: Cached[int] = Cached("t", ttl_s=60, clock=clock)
    assert cache.get("k", lambda: 1) == 1
    clock.now = 61.0

    def fail() -> int:
        calls.append(0)
        raise RuntimeError("neo4j down")

    assert cache.get("k", fail) == 1
    wait_idle(cache, "k")
    clock.now = 61.0 + cache_module.RETRY_S - 0.1
    assert cache.get("k", fail) == 1  # within the pause: no new query
    wait_idle(cache, "k")
    assert calls == [0]
    clock.now = 61.0 + cache_module.RETRY_S + 0.1
    assert cache.get("k", lambda: 2) == 1  # retried in the background
    wait_idle(cache, "k")
    assert cache.get("k", fail) == 2


def test_clear_drops_entries_and_a_load_in_flight_does_not_store_its_value() -> None:
    """An erasure clears the caches: what a load read before it must not come back."""
    cache: Cached[str] = Cached("t", ttl_s=60.0)
    before_erasure = Blocking("counts with the erased user")
    got: list[str] = []
    loader = threading.Thread(target=lambda: got.append(cache.get("p", before_erasure)))
    loader.start()
    assert before_erasure.started.wait(5)
    cache.clear()
    before_erasure.release.set()
    loader.join(5)
    assert got == ["counts with the erased user"]  # its own caller still gets it
    assert cache.get("p", lambda: "counts without") == "counts without"


def test_size_bound_drops_the_least_recently_used() -> None:
    cache: Cached[int] = Cached("t", ttl_s=60.0, size=2)
    cache.get("a", lambda: 1)
    cache.get("b", lambda: 2)
    cache.get("a", lambda: 0)  # a used last
    cache.get("c", lambda: 3)
    assert cache.get("b", lambda: 20) == 20  # b was dropped
    assert cache.get("c", lambda: 0) == 3
