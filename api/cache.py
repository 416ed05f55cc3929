"""The API's read-through cache of non-personalized answers (popular items and queries, a
segment's items, a category's items): served stale while one background load refreshes them.

A value is fresh for ``ttl_s`` seconds after it was loaded. A request on a fresh entry gets it;
a request on an expired entry gets the expired value at once and starts one background load
(no other request starts another while it runs); only an entry never loaded makes requests
wait, and concurrent requests on it wait for one load instead of each sending the query. The
loads behind these answers are aggregations over the graph (the popular items count every
item's interactions: about a second at 1M users), so no request waits on one once the entry
exists, and one query per key and ``ttl_s`` reaches Neo4j whatever the request rate.

A failed background load keeps the old value and is retried after :data:`RETRY_S` seconds (a
Neo4j outage does not take the fallback answers away, and does not send one query per
request either); a failed first load raises to its caller and the next request retries.
:meth:`Cached.clear` (an erasure: the counts must no longer include the user) drops every
entry, and a load that started before it does not store its result.

Hand-written around ``cachetools.LRUCache`` because cachetools (and the standard library)
has no serve-stale-while-refresh: ``cachetools.cached`` with a condition gives the single
load, but an expired ``TTLCache`` entry is gone, so every expiry would make requests wait.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from cachetools import LRUCache

from api import metrics

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds before a failed background load is tried again (the old value is served meanwhile).
RETRY_S = 5.0


class Cached(Generic[T]):
    """A thread-safe cache of at most ``size`` keys (least recently used dropped first), each
    fresh for ``ttl_s`` seconds and then served stale while one background load refreshes it.
    ``dpgcn_api_cache_total{cache=name}`` counts each request's result (``hit``: fresh,
    ``stale``, ``miss``: loaded for it) and each background load (``refresh``,
    ``refresh_failed``)."""

    def __init__(
        self,
        name: str,
        ttl_s: float,
        size: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.ttl_s = ttl_s
        self._clock = clock
        #: key -> (fresh until, value)
        self._data: LRUCache[Hashable, tuple[float, T]] = LRUCache(size)
        self._changed = threading.Condition()
        self._loading: set[Hashable] = set()
        #: Bumped by :meth:`clear`; a load started under an older generation is not stored.
        self._generation = 0

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        """The value of ``key``: cached, stale (and a refresh started), or loaded now."""
        with self._changed:
            while True:
                entry = self._data.get(key)
                if entry is not None:
                    fresh_until, value = entry
                    if self._clock() < fresh_until:
                        metrics.cache_result(self.name, "hit")
                        return value
                    if key not in self._loading:
                        self._loading.add(key)
                        threading.Thread(
                            target=self._refresh,
                            args=(key, load, self._generation),
                            name=f"dpgcn-cache-{self.name}",
                            daemon=True,
                        ).start()
                    metrics.cache_result(self.name, "stale")
                    return value
                if key not in self._loading:
                    self._loading.add(key)
                    generation = self._generation
                    break
                self._changed.wait()  # another request is loading this key: wait for it
        metrics.cache_result(self.name, "miss")
        try:
            value = load()
        except BaseException:
            self._done(key, generation, None)
            raise
        self._done(key, generation, (self._clock() + self.ttl_s, value))
        return value

    def clear(self) -> None:
        """Drop every entry; loads in flight will not store what they read."""
        with self._changed:
            self._generation += 1
            self._data.clear()

    def _refresh(self, key: Hashable, load: Callable[[], T], generation: int) -> None:
        try:
            value = load()
        except Exception as e:  # keep serving the old value; try again after RETRY_S
            logger.warning(
                "refresh of %s failed (%s); serving the old value", self.name, type(e).__name__
            )
            metrics.cache_result(self.name, "refresh_failed")
            with self._changed:
                entry = self._data.get(key)
                retry = (self._clock() + RETRY_S, entry[1]) if entry is not None else None
            self._done(key, generation, retry)
            return
        metrics.cache_result(self.name, "refresh")
        self._done(key, generation, (self._clock() + self.ttl_s, value))

    def _done(self, key: Hashable, generation: int, entry: tuple[float, T] | None) -> None:
        with self._changed:
            self._loading.discard(key)
            if entry is not None and generation == self._generation:
                self._data[key] = entry
            self._changed.notify_all()
