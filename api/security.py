"""API-key authentication: ``X-API-Key: dpgcn_<id>_<secret>``, scopes read < write < admin.

Keys are stored in Neo4j (only ``sha256(secret)``) and held by each API process in memory as
a table (:class:`KeyCache`) that is read whole, never key by key:

* a background thread re-reads the table every ``key_cache_s`` seconds, so a revocation takes
  effect within ``key_cache_s`` (plus the time of one read);
* a request whose key id the table lacks waits (without holding a thread) for the next read
  of the whole table that begins after it arrived: one read serves every request waiting,
  and such reads happen at most once per ``key_miss_refresh_s`` whatever the number of
  unknown ids. So a key created a moment ago works at once, and unknown ids never cost a
  Neo4j read each. Ids still unknown after such a read are refused (401) and remembered
  (``cachetools.TTLCache``): refused at once next time;
* while Neo4j is down the table last read stays in force: known keys keep working (the
  serving snapshot answers without Neo4j), unknown ids are refused after the failed read
  (503 only while the table was never read).

Keys never reach logs.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Future
from typing import Annotated

from cachetools import TTLCache
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader
from neo4j import Driver

from api import metrics
from api.errors import ApiError
from graphstore import apikeys
from graphstore.apikeys import StoredKey
from graphstore.errors import GraphUnavailableError

logger = logging.getLogger(__name__)

HEADER = "X-API-Key"

api_key_header = APIKeyHeader(
    name=HEADER,
    auto_error=False,
    description="An API key from `dpgcn apikey create --scope read|write|admin`.",
)


class KeyCache:
    """The stored API keys in memory (see the module docstring).

    Args:
        driver: Neo4j driver the table is read with.
        database: Neo4j database.
        refresh_s: how often the background thread re-reads the table (the revocation bound).
        miss_refresh_s: the least time between two reads made for unknown key ids.
        negative_ttl_s: how long an id found unknown is refused without a read.
        negative_size: most unknown ids remembered.
    """

    def __init__(
        self,
        driver: Driver,
        database: str,
        refresh_s: float,
        miss_refresh_s: float = 1.0,
        negative_ttl_s: float = 300.0,
        negative_size: int = 100_000,
    ) -> None:
        self.driver, self.database = driver, database
        self.refresh_s, self.miss_refresh_s = refresh_s, miss_refresh_s
        #: key id -> (monotonic time of the table read, the stored key)
        self._data: dict[str, tuple[float, StoredKey]] = {}
        self._unknown: TTLCache[str, bool] = TTLCache(negative_size, negative_ttl_s)
        self._lock = threading.Lock()  # guards _unknown and _next
        self._read_lock = threading.Lock()  # one table read at a time
        #: the read scheduled for unknown ids (begins later than any request waiting on it)
        self._next: Future[None] | None = None
        #: monotonic begin time of the last read attempt / of the last finished read
        self._attempt_at = float("-inf")
        self._finished_began = float("-inf")
        #: monotonic time of the last successful read (None: never read)
        self.loaded_at: float | None = None
        #: table reads made (successful or not): what unknown ids may cost, for tests
        self.reads = 0
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- the table

    def replace(self, keys: Iterable[StoredKey], read_at: float | None = None) -> None:
        """Make ``keys`` the whole table, as read at ``read_at`` (default: now)."""
        at = time.monotonic() if read_at is None else read_at
        self._data = {k.id: (at, k) for k in keys}  # one assignment: readers see old or new
        self.loaded_at = at
        self._attempt_at = max(self._attempt_at, at)
        self._finished_began = max(self._finished_began, at)

    def refresh(self) -> None:
        """Read the whole table from Neo4j now (after a read in progress); raises
        :class:`GraphStoreError` when the read fails (the table is then kept)."""
        with self._read_lock:
            self._read_locked()

    def _read_locked(self) -> None:
        began = self._attempt_at = time.monotonic()
        self.reads += 1
        try:
            keys = apikeys.get_all_keys(self.driver, self.database)
        except Exception:
            metrics.child(metrics.KEY_TABLE_READS, "failed").inc()
            self._finished_began = max(self._finished_began, began)
            raise
        metrics.child(metrics.KEY_TABLE_READS, "ok").inc()
        self.replace(keys, began)

    def clear(self) -> None:
        """Forget every key and unknown id (the next request reads the table)."""
        with self._lock:
            self._unknown.clear()
        self._data = {}
        self.loaded_at = None

    # ---------------------------------------------------------------- look-ups

    def peek(self, key_id: str) -> tuple[bool, StoredKey | None]:
        """``(True, key)`` or ``(True, None)`` (an id found unknown) when the table decides
        alone, with no I/O; ``(False, None)`` when a read must come first."""
        hit = self._data.get(key_id)
        if hit is not None:
            metrics.cache_event("api_key", True)
            return True, hit[1]
        with self._lock:
            if key_id in self._unknown:
                metrics.cache_event("api_key", True)
                return True, None
        metrics.cache_event("api_key", False)
        return False, None

    def read_after(self, seen_at: float) -> Future[None]:
        """Done when a table read that began at or after ``seen_at`` has finished (or
        failed). Reads made for this start at most once per ``miss_refresh_s``."""
        with self._lock:
            if self._finished_began >= seen_at:
                done: Future[None] = Future()
                done.set_result(None)
                return done
            if self._next is not None:
                return self._next
            future = self._next = Future()
        threading.Thread(
            target=self._read_for_misses, args=(future,), name="dpgcn-key-miss", daemon=True
        ).start()
        return future

    def _read_for_misses(self, future: Future[None]) -> None:
        try:
            with self._read_lock:
                wait = self._attempt_at + self.miss_refresh_s - time.monotonic()
                if wait > 0:
                    self._stopped.wait(wait)
                with self._lock:  # requests arriving from now on wait for a later read
                    self._next = None
                self._read_locked()
        except Exception as e:  # Neo4j away: the table last read stays in force
            logger.warning("API key table read failed: %s", type(e).__name__)
        finally:
            future.set_result(None)

    def decide(self, key_id: str) -> StoredKey | None:
        """After a read that began after the request arrived: the key or None (remembered
        as unknown); :class:`GraphUnavailableError` when the table was never read."""
        hit = self._data.get(key_id)
        if hit is not None:
            return hit[1]
        if self.loaded_at is None:
            raise GraphUnavailableError("the API key table could not be read")
        with self._lock:
            self._unknown[key_id] = True
        return None

    def get(self, key_id: str, timeout: float = 60.0) -> StoredKey | None:
        """The stored key or None, waiting (blocking) for a read when :meth:`peek` cannot
        decide. The API awaits :meth:`read_after` instead (:func:`admit`)."""
        decided, stored = self.peek(key_id)
        if decided:
            return stored
        self.read_after(time.monotonic()).result(timeout)
        return self.decide(key_id)

    # ---------------------------------------------------------------- background refresh

    def start(self) -> None:
        """Read the table now and every ``refresh_s`` seconds, in a daemon thread."""
        if self._thread is not None:
            return
        self._stopped.clear()
        self._thread = threading.Thread(target=self._run, name="dpgcn-api-keys", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def set_refresh_s(self, refresh_s: float) -> None:
        """Change the refresh period, effective at once (the thread reads the table now)."""
        self.refresh_s = refresh_s
        self._wake.set()

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                self.refresh()
            except Exception as e:  # Neo4j away: the table last read stays in force
                logger.warning("API key table refresh failed: %s", type(e).__name__)
            self._wake.wait(self.refresh_s)
            self._wake.clear()


def check_cached(cache: KeyCache, key: str | None, scope: str) -> StoredKey | None:
    """The key's stored record when the table can decide alone (no I/O); raises 401/403 like
    :func:`require`; None when the table must be read first."""
    if not key:
        raise ApiError(401, f"missing API key: send it in the {HEADER} header")
    parts = apikeys.split_key(key)
    if parts is None:
        raise ApiError(401, "invalid or revoked API key")
    cached, stored = cache.peek(parts[0])
    if not cached:
        return None
    return _admit(stored, parts[1], scope)


def _admit(stored: StoredKey | None, secret: str, scope: str) -> StoredKey:
    if not apikeys.verify(stored, secret):
        raise ApiError(401, "invalid or revoked API key")
    assert stored is not None
    if not apikeys.scope_allows(stored.scope, scope):
        raise ApiError(403, f"this API key has scope {stored.scope!r}; {scope!r} is needed")
    return stored


async def admit(cache: KeyCache, key: str | None, scope: str) -> StoredKey:
    """The key's stored record when it is valid with at least ``scope``; raises 401/403, or
    503 (GraphUnavailableError) when the key table was never read. Waits for a table read
    only when the table cannot decide alone."""
    seen_at = time.monotonic()
    stored = check_cached(cache, key, scope)
    if stored is None:  # wait for the next table read, holding no thread
        assert key is not None
        key_id, secret = apikeys.split_key(key) or ("", "")
        await asyncio.wrap_future(cache.read_after(seen_at))
        stored = _admit(cache.decide(key_id), secret, scope)
    return stored


def require(scope: str) -> Callable[..., Awaitable[str]]:
    """A dependency admitting keys whose scope is at least ``scope``; returns the key id."""

    async def check(
        request: Request, key: Annotated[str | None, Security(api_key_header)] = None
    ) -> str:
        stored = await admit(request.app.state.keys, key, scope)
        request.state.key_id = stored.id
        return stored.id

    check.__name__ = f"require_{scope}"
    return check


ReadKey = Depends(require("read"))
WriteKey = Depends(require("write"))
AdminKey = Depends(require("admin"))
