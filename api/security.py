"""API-key authentication: ``X-API-Key: dpgcn_<id>_<secret>``, scopes read < write < admin.

Keys are stored in Neo4j (only ``sha256(secret)``) and held by each API process in memory as
a table (:class:`KeyCache`) that is read whole, never key by key:

* a background thread re-reads the table every ``key_cache_s`` seconds, so a revocation takes
  effect within ``key_cache_s`` (plus the time of one read);
* a key id the table lacks is refused (401) without any I/O when the table was read less
  than ``key_miss_refresh_s`` ago; otherwise the table is read once first (one read for all
  the requests waiting, at most one per ``key_miss_refresh_s`` whatever the number of
  unknown ids), so a key created a moment ago works at once. Ids found unknown are remembered
  (``cachetools.TTLCache``) and refused at once;
* while Neo4j is down the table last read stays in force: known keys keep working (the
  serving snapshot answers without Neo4j), unknown ids are refused (503 only when the table
  was never read).

Keys never reach logs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated

from cachetools import TTLCache
from fastapi import Depends, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader
from neo4j import Driver

from api import metrics
from api.errors import ApiError
from graphstore import apikeys
from graphstore.apikeys import StoredKey
from graphstore.errors import GraphStoreError, GraphUnavailableError

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
        miss_refresh_s: the least time between two reads caused by unknown key ids.
        negative_ttl_s: how long an id found unknown is refused without looking again.
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
        self._unknown_lock = threading.Lock()
        self._read_lock = threading.Lock()
        #: monotonic time of the last read attempt / the last successful read (None: never)
        self._attempt_at = float("-inf")
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

    def refresh(self, min_age_s: float = 0.0) -> bool:
        """Read the whole table from Neo4j, unless a read was attempted less than
        ``min_age_s`` ago (then False: nothing read). One read at a time: callers that waited
        for another's read use it. Raises :class:`GraphStoreError` when the read fails."""
        asked = time.monotonic()
        with self._read_lock:
            if self._attempt_at >= asked or time.monotonic() - self._attempt_at < min_age_s:
                return False
            read_at = self._attempt_at = time.monotonic()
            self.reads += 1
            keys = apikeys.get_all_keys(self.driver, self.database)
            self.replace(keys, read_at)
        return True

    def clear(self) -> None:
        """Forget every key and unknown id (the next request reads the table)."""
        with self._unknown_lock:
            self._unknown.clear()
        self._data = {}
        self.loaded_at = None
        self._attempt_at = float("-inf")

    # ---------------------------------------------------------------- look-ups

    def peek(self, key_id: str) -> tuple[bool, StoredKey | None]:
        """``(True, key)`` or ``(True, None)`` (unknown) when the table decides alone (no
        I/O), ``(False, None)`` when the table must be read first."""
        hit = self._data.get(key_id)
        if hit is not None:
            metrics.cache_event("api_key", True)
            return True, hit[1]
        with self._unknown_lock:
            if key_id in self._unknown:
                metrics.cache_event("api_key", True)
                return True, None
            if (
                self.loaded_at is not None
                and time.monotonic() - self._attempt_at < self.miss_refresh_s
            ):
                self._unknown[key_id] = True
                metrics.cache_event("api_key", True)
                return True, None
        return False, None

    def get(self, key_id: str) -> StoredKey | None:
        """The stored key or None; reads the table first when :meth:`peek` cannot decide.
        Raises :class:`GraphUnavailableError` only when the table was never read."""
        decided, stored = self.peek(key_id)
        if decided:
            return stored
        metrics.cache_event("api_key", False)
        try:
            self.refresh(self.miss_refresh_s)
        except GraphStoreError as e:
            logger.warning("API key table read failed: %s", type(e).__name__)
        hit = self._data.get(key_id)
        if hit is not None:
            return hit[1]
        if self.loaded_at is None:
            raise GraphUnavailableError("the API key table could not be read")
        with self._unknown_lock:
            self._unknown[key_id] = True
        return None

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
    503 when the key table was never read. Reads the table (off the event loop) only when
    the table cannot decide alone."""
    stored = check_cached(cache, key, scope)
    if stored is None:
        assert key is not None
        key_id, secret = apikeys.split_key(key) or ("", "")
        stored = _admit(await run_in_threadpool(cache.get, key_id), secret, scope)
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
