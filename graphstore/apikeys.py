"""API keys: ``(:ApiKey {id, hash, scope, created_at, revoked})``.

A key is ``dpgcn_<id>_<secret>``: ``id`` is public (listed, revoked by), ``secret`` is 256
random bits shown once at creation. Only ``sha256(secret)`` is stored, so the graph never
holds a usable key. Scopes are ordered ``read < write < admin``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from neo4j import Driver

from graphstore import statelog
from graphstore.driver import execute
from graphstore.errors import GraphStoreError

SCOPES = ("read", "write", "admin")
PREFIX = "dpgcn"


@dataclass(frozen=True)
class StoredKey:
    id: str
    hash: str
    scope: str
    revoked: bool


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def split_key(key: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a well-formed key, else None."""
    parts = key.strip().split("_")
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    if len(parts[1]) > 64 or len(parts[2]) > 128:
        return None
    return parts[1], parts[2]


def scope_allows(granted: str, needed: str) -> bool:
    return granted in SCOPES and needed in SCOPES and SCOPES.index(granted) >= SCOPES.index(needed)


def create_key(
    driver: Driver, scope: str, name: str | None = None, database: str = "neo4j"
) -> tuple[str, str]:
    """Store a new key; returns ``(id, key)``. The key is not recoverable afterwards."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
    key_id = secrets.token_hex(6)
    secret = secrets.token_hex(32)
    execute(
        driver,
        "apikeys/create_api_key",
        {
            "id": key_id,
            "hash": hash_secret(secret),
            "scope": scope,
            "created_at": time.time(),
            "name": name,
        },
        database=database,
    )
    return key_id, f"{PREFIX}_{key_id}_{secret}"


def get_key(driver: Driver, key_id: str, database: str = "neo4j") -> StoredKey | None:
    records = execute(driver, "apikeys/get_api_key", {"id": key_id}, database=database, read=True)
    if not records:
        return None
    r = records[0]
    return StoredKey(str(r["id"]), str(r["hash"]), str(r["scope"]), bool(r["revoked"]))


def get_all_keys(driver: Driver, database: str = "neo4j") -> list[StoredKey]:
    """Every stored key (revoked ones too): the table an API process keeps in memory."""
    records = execute(driver, "apikeys/get_api_keys", database=database, read=True)
    return [
        StoredKey(str(r["id"]), str(r["hash"]), str(r["scope"]), bool(r["revoked"]))
        for r in records
    ]


def verify(stored: StoredKey | None, secret: str) -> bool:
    """Whether ``secret`` matches a stored, unrevoked key (constant-time comparison)."""
    if stored is None or stored.revoked:
        return False
    return hmac.compare_digest(stored.hash, hash_secret(secret))


def list_keys(driver: Driver, database: str = "neo4j") -> list[dict[str, Any]]:
    return [dict(r) for r in execute(driver, "apikeys/list_api_keys", database=database, read=True)]


def revoke_key(driver: Driver, key_id: str, database: str = "neo4j", *, log: bool = True) -> bool:
    """Revoke a key; False when no key has that id. With ``log`` the key id is appended,
    fsynced, to the revocation log outside the graph (``graphstore.statelog``) first, so a
    restored backup revokes it again (a log line for a key that turns out not to exist is
    harmless: its replay finds nothing)."""
    now = time.time()
    if log:
        try:
            statelog.append(statelog.REVOCATIONS, {"key_id": key_id, "revoked_at": now})
        except OSError as e:
            raise GraphStoreError(
                f"the revocation log {statelog.path(statelog.REVOCATIONS)} cannot be written "
                f"({e}); the key was not revoked"
            ) from e
    records = execute(
        driver, "apikeys/revoke_api_key", {"id": key_id, "revoked_at": now}, database=database
    )
    return bool(records)
