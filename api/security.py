"""API-key authentication: ``X-API-Key: dpgcn_<id>_<secret>``, scopes read < write < admin.

Keys are looked up by id in Neo4j (only ``sha256(secret)`` is stored) and cached for
``key_cache_s`` seconds, so revocation takes effect within that time. Keys never reach logs.
"""

from __future__ import annotations

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

HEADER = "X-API-Key"

api_key_header = APIKeyHeader(
    name=HEADER,
    auto_error=False,
    description="An API key from `dpgcn apikey create --scope read|write|admin`.",
)


class KeyCache:
    """Stored keys by id, trusted for ``ttl_s`` seconds (unknown ids too, briefly)."""

    def __init__(self, driver: Driver, database: str, ttl_s: float) -> None:
        self.driver, self.database, self.ttl_s = driver, database, ttl_s
        self._data: dict[str, tuple[float, StoredKey | None]] = {}
        self._lock = threading.Lock()

    def peek(self, key_id: str) -> tuple[bool, StoredKey | None]:
        """``(True, key)`` when the cache holds a fresh answer for ``key_id`` (no I/O)."""
        hit = self._data.get(key_id)
        if hit is not None and hit[0] > time.monotonic():
            metrics.cache_event("api_key", True)
            return True, hit[1]
        return False, None

    def get(self, key_id: str) -> StoredKey | None:
        now = time.monotonic()
        hit = self._data.get(key_id)
        if hit is not None and hit[0] > now:
            metrics.cache_event("api_key", True)
            return hit[1]
        metrics.cache_event("api_key", False)
        stored = apikeys.get_key(self.driver, key_id, self.database)
        with self._lock:
            if len(self._data) > 10_000:
                self._data.clear()
            self._data[key_id] = (now + self.ttl_s, stored)
        return stored

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


def require(scope: str) -> Callable[..., Awaitable[str]]:
    """A dependency admitting keys whose scope is at least ``scope``; returns the key id."""

    async def check(
        request: Request, key: Annotated[str | None, Security(api_key_header)] = None
    ) -> str:
        if not key:
            raise ApiError(401, f"missing API key: send it in the {HEADER} header")
        parts = apikeys.split_key(key)
        cache: KeyCache = request.app.state.keys
        stored: StoredKey | None = None
        if parts is not None:
            cached, stored = cache.peek(parts[0])
            if not cached:  # a Neo4j read: off the event loop
                stored = await run_in_threadpool(cache.get, parts[0])
        if parts is None or not apikeys.verify(stored, parts[1]):
            raise ApiError(401, "invalid or revoked API key")
        assert stored is not None
        if not apikeys.scope_allows(stored.scope, scope):
            raise ApiError(403, f"this API key has scope {stored.scope!r}; {scope!r} is needed")
        request.state.key_id = stored.id
        return stored.id

    check.__name__ = f"require_{scope}"
    return check


ReadKey = Depends(require("read"))
WriteKey = Depends(require("write"))
AdminKey = Depends(require("admin"))
