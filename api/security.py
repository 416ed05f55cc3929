"""API-key authentication: ``X-API-Key: dpgcn_<id>_<secret>``, scopes read < write < admin.

Keys are looked up by id in Neo4j (only ``sha256(secret)`` is stored) and cached in the
process (:class:`KeyCache`): no answer older than ``key_cache_s`` seconds is used, so a
revocation takes effect within that time, and keys in use are re-read in the background
before they expire, so requests do not wait on Neo4j. Keys never reach logs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader
from neo4j import Driver

from api import metrics
from api.errors import ApiError
from graphstore import apikeys
from graphstore.apikeys import StoredKey

logger = logging.getLogger(__name__)

HEADER = "X-API-Key"

api_key_header = APIKeyHeader(
    name=HEADER,
    auto_error=False,
    description="An API key from `dpgcn apikey create --scope read|write|admin`.",
)


class KeyCache:
    """Stored keys by id (unknown ids too), each answer trusted for at most ``ttl_s`` seconds
    after it was read from Neo4j, so a revocation takes effect within ``ttl_s``.

    A key in use is re-read **ahead** of its expiry: the first request that finds an answer
    older than half of ``ttl_s`` starts one background read (at most one per key at a time) and
    is answered from the cache meanwhile; only an answer older than ``ttl_s`` is never used.
    So busy keys never make a request wait on Neo4j, and the revocation bound is unchanged.
    """

    def __init__(self, driver: Driver, database: str, ttl_s: float) -> None:
        self.driver, self.database, self.ttl_s = driver, database, ttl_s
        #: key id -> (monotonic time of the read, the stored key or None for unknown ids)
        self._data: dict[str, tuple[float, StoredKey | None]] = {}
        self._refreshing: set[str] = set()
        self._lock = threading.Lock()

    def peek(self, key_id: str) -> tuple[bool, StoredKey | None]:
        """``(True, key)`` when the cache holds an answer for ``key_id`` younger than
        ``ttl_s`` (no I/O; may start a background re-read), else ``(False, None)``."""
        hit = self._data.get(key_id)
        if hit is None:
            return False, None
        age = time.monotonic() - hit[0]
        if age >= self.ttl_s:
            return False, None
        if age >= self.ttl_s / 2 and key_id not in self._refreshing:
            self._refresh_ahead(key_id)
        metrics.cache_event("api_key", True)
        return True, hit[1]

    def get(self, key_id: str) -> StoredKey | None:
        """The stored key (or None), from the cache when fresh, else read from Neo4j."""
        cached, stored = self.peek(key_id)
        if cached:
            return stored
        metrics.cache_event("api_key", False)
        return self._read(key_id)

    def _read(self, key_id: str) -> StoredKey | None:
        read_at = time.monotonic()  # before the read: the answer is at least this fresh
        stored = apikeys.get_key(self.driver, key_id, self.database)
        with self._lock:
            if len(self._data) > 10_000:
                self._data.clear()
            old = self._data.get(key_id)
            if old is None or old[0] < read_at:
                self._data[key_id] = (read_at, stored)
        return stored

    def _refresh_ahead(self, key_id: str) -> None:
        with self._lock:
            if key_id in self._refreshing:
                return
            self._refreshing.add(key_id)

        def run() -> None:
            try:
                self._read(key_id)
            except Exception as e:  # Neo4j away: the entry expires and requests read it
                logger.warning("API key re-read failed: %s", type(e).__name__)
            finally:
                with self._lock:
                    self._refreshing.discard(key_id)

        threading.Thread(target=run, name="dpgcn-key-refresh", daemon=True).start()

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


def check_cached(cache: KeyCache, key: str | None, scope: str) -> StoredKey | None:
    """The key's stored record when the cache can decide alone (no I/O); raises 401/403 like
    :func:`require`; None when the key must be read from Neo4j first."""
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


def require(scope: str) -> Callable[..., Awaitable[str]]:
    """A dependency admitting keys whose scope is at least ``scope``; returns the key id."""

    async def check(
        request: Request, key: Annotated[str | None, Security(api_key_header)] = None
    ) -> str:
        cache: KeyCache = request.app.state.keys
        stored = check_cached(cache, key, scope)
        if stored is None:  # a Neo4j read: off the event loop
            assert key is not None
            key_id, secret = apikeys.split_key(key) or ("", "")
            stored = _admit(await run_in_threadpool(cache.get, key_id), secret, scope)
        request.state.key_id = stored.id
        return stored.id

    check.__name__ = f"require_{scope}"
    return check


ReadKey = Depends(require("read"))
WriteKey = Depends(require("write"))
AdminKey = Depends(require("admin"))
