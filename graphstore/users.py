"""Privacy operations on users: erasure and personalization consent.

**Erased users stay erased.** An erasure deletes the user and, in the same transaction, leaves
a tombstone ``(:ErasedUser {id_hash, erased_at})`` that holds only a salted hash of the id —
``HMAC-SHA256(salt, user id)`` — never the id itself. Events (``graphstore.events``) and
consent changes for an id whose hash has a tombstone are skipped, so nothing re-creates the
user. The salt is 32 random bytes kept once in the graph, ``(:ErasureSalt {id: 'erasure',
value})``, created by the first erasure; it is read in the same transaction as the statement
that uses it, so every process (API, workers, loaders) hashes with the one salt even when the
graph is replaced. Without it the hashes of guessable ids such as ``u42`` could be reversed
by trying every id; with it a reader of the tombstones alone (an export, a log) cannot. A
reader of the whole database can still test a guessed id against the tombstones (the salt
sits next to them) but never list the erased ids.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from neo4j import Driver, ManagedTransaction
from neo4j.exceptions import ClientError, Neo4jError, ServiceUnavailable, SessionExpired

from graphstore import queries, statelog
from graphstore.driver import quiet, wrap
from graphstore.errors import GraphStoreError

T = TypeVar("T")


@dataclass(frozen=True)
class Erasure:
    users: int
    events: int
    queries: int


def id_hash(user_id: str, salt: str) -> str:
    """The tombstone key of a user id: ``HMAC-SHA256(salt, id)`` as hex."""
    return hmac.new(salt.encode("utf-8"), user_id.encode("utf-8"), hashlib.sha256).hexdigest()


def run_in_transaction(
    driver: Driver, work: Callable[[ManagedTransaction], T], database: str = "neo4j"
) -> T:
    """Run ``work`` in one managed write transaction (retried by the driver on transient
    errors), wrapping driver errors like :func:`graphstore.driver.execute`."""
    try:
        with driver.session(database=database) as session:
            return session.execute_write(work)
    except ClientError as e:
        raise GraphStoreError(f"Neo4j refused the statement: {e.message}") from e
    except (Neo4jError, ServiceUnavailable, SessionExpired, OSError) as e:
        raise wrap(e) from e


def run_named(tx: ManagedTransaction, name: str, params: dict[str, Any] | None = None) -> list[Any]:
    """One named statement inside a transaction function."""
    return list(tx.run(queries.load(name), quiet(params)))  # type: ignore[arg-type]


def read_salt(tx: ManagedTransaction) -> str | None:
    """The graph's erasure salt, or None when nobody was ever erased (then no id is erased)."""
    rows = run_named(tx, "users/get_erasure_salt")
    return str(rows[0]["salt"]) if rows and rows[0]["salt"] is not None else None


def ensure_salt(tx: ManagedTransaction) -> str:
    """The graph's erasure salt, created on first use."""
    rows = run_named(
        tx,
        "users/merge_erasure_salt",
        {"candidate": secrets.token_hex(32), "now": time.time()},
    )
    return str(rows[0]["salt"])


def delete_user(
    driver: Driver, user_id: str, database: str = "neo4j", *, log: bool = True
) -> Erasure:
    """Erase the user node (relationships, embeddings, segment membership with it), the user's
    stored events and the queries nobody else searched, and leave a tombstone with the id's
    salted hash, all in one transaction. Idempotent; erasing an id never seen still leaves the
    tombstone (its later events are refused).

    With ``log`` the tombstone (hash and salt, no id) is also appended, fsynced, to the
    erasure log outside the graph (``graphstore.statelog``) before the transaction commits,
    so a restored backup erases the user again; when the log cannot be written the erasure
    fails and nothing is committed."""

    def work(tx: ManagedTransaction) -> Erasure:
        salt = ensure_salt(tx)
        digest = id_hash(user_id, salt)
        now = time.time()
        rows = run_named(
            tx, "users/delete_user", {"user_id": user_id, "id_hash": digest, "now": now}
        )
        r = rows[0]
        if log:
            try:
                statelog.append(
                    statelog.ERASURES, {"id_hash": digest, "salt": salt, "erased_at": now}
                )
            except OSError as e:
                raise GraphStoreError(
                    f"the erasure log {statelog.path(statelog.ERASURES)} cannot be written "
                    f"({e}); nothing was erased"
                ) from e
        return Erasure(int(r["users"]), int(r["events"]), int(r["queries"]))

    return run_in_transaction(driver, work, database)


def erased_among(driver: Driver, user_ids: Sequence[str], database: str = "neo4j") -> set[str]:
    """The ids among ``user_ids`` that were erased (a tombstone with their hash exists): what
    a bulk loader drops before writing users or interactions."""
    ids = list(dict.fromkeys(map(str, user_ids)))
    return run_in_transaction(driver, lambda tx: erased_in(tx, ids), database)


def erased_in(tx: ManagedTransaction, user_ids: Sequence[str]) -> set[str]:
    """The ids among ``user_ids`` with a tombstone, read inside ``tx``."""
    salt = read_salt(tx)
    if salt is None or not user_ids:
        return set()
    by_hash = {id_hash(u, salt): u for u in dict.fromkeys(user_ids)}
    rows = run_named(tx, "users/get_erased_hashes", {"hashes": list(by_hash)})
    return {by_hash[h] for h in (rows[0]["erased"] if rows else [])}


class ErasedMeanwhile(Exception):
    """An erasure of a user this write touched committed while the write waited for the
    user's lock: the write must not commit (it would re-create or feed the erased user)."""


#: How often a write that lost a race with an erasure is run again (each rerun sees the
#: tombstone at its start and skips the user, so one rerun is enough unless another erasure
#: lands in between).
ERASURE_RACE_ATTEMPTS = 3


def run_guarded(
    driver: Driver,
    work: Callable[[ManagedTransaction], T],
    user_ids: Callable[[T], Sequence[str]],
    database: str = "neo4j",
) -> T:
    """Run a user-writing ``work`` so that it never outlives a concurrent erasure.

    ``delete_user`` locks the user first. A write that waited for that lock sees the erasure
    committed once it gets it, so after ``work`` the same transaction checks the tombstones
    of ``user_ids(result)`` (the users it wrote) again: if one appeared, the transaction is
    rolled back and run again, and the rerun skips that user from the start. A write whose
    target node was deleted under it (Neo4j refuses to touch a deleted entity) is run again
    the same way."""

    def guarded(tx: ManagedTransaction) -> T:
        result = work(tx)
        written = list(user_ids(result))
        if written and erased_in(tx, written):
            raise ErasedMeanwhile()
        return result

    for attempt in range(1, ERASURE_RACE_ATTEMPTS + 1):
        try:
            return run_in_transaction(driver, guarded, database)
        except ErasedMeanwhile:
            pass
        except GraphStoreError as e:
            if not _deleted_under_us(e) or attempt == ERASURE_RACE_ATTEMPTS:
                raise
    raise GraphStoreError(
        f"a write lost {ERASURE_RACE_ATTEMPTS} races with erasures of its users in a row; "
        "nothing was written: retry the request"
    )


def _deleted_under_us(error: GraphStoreError) -> bool:
    cause = error.__cause__
    return isinstance(cause, Neo4jError) and (cause.code or "").endswith("EntityNotFound")


def is_erased(driver: Driver, user_id: str, database: str = "neo4j") -> bool:
    """Whether ``user_id`` was erased (a tombstone with its hash exists)."""
    return user_id in erased_among(driver, [user_id], database)


def set_consent(driver: Driver, user_id: str, consent: bool, database: str = "neo4j") -> bool:
    """Record whether the user allows personalization (creates an unknown user, but never an
    erased one: then nothing is stored). Returns the consent value."""

    def work(tx: ManagedTransaction) -> tuple[bool, bool]:
        salt = read_salt(tx)
        rows = run_named(
            tx,
            "users/set_consent",
            {
                "user_id": user_id,
                "consent": bool(consent),
                "now": time.time(),
                "id_hash": id_hash(user_id, salt) if salt is not None else None,
            },
        )
        return bool(rows[0]["consent"]), bool(rows[0]["erased"])

    stored, _ = run_guarded(driver, work, lambda result: [] if result[1] else [user_id], database)
    return stored
