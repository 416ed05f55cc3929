"""Read the erasure tombstones (``graphstore.users``) to find erased users in files.

Tombstones hold ``HMAC-SHA256(salt, user id)``; :class:`Erasures` tests an id against them
without ever holding the plain ids, which is what artifact scrubbing
(``workers.privacy``) needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from neo4j import Driver, ManagedTransaction

from graphstore.users import id_hash, read_salt, run_in_transaction, run_named


@dataclass(frozen=True)
class Erasures:
    """The graph's tombstones: ``salt`` (None when nobody was ever erased), the set of id
    hashes, and the newest erasure time (epoch seconds, 0 when none)."""

    salt: str | None
    hashes: frozenset[str]
    latest: float

    def __contains__(self, user_id: object) -> bool:
        if self.salt is None or not self.hashes or not isinstance(user_id, str):
            return False
        return id_hash(user_id, self.salt) in self.hashes


def get_erasures(driver: Driver, database: str = "neo4j") -> Erasures:
    """Salt and tombstones, read in one transaction."""

    def work(tx: ManagedTransaction) -> Erasures:
        salt = read_salt(tx)
        if salt is None:
            return Erasures(None, frozenset(), 0.0)
        row = run_named(tx, "users/list_erased_users")[0]
        return Erasures(salt, frozenset(row["hashes"]), float(row["latest"] or 0.0))

    return run_in_transaction(driver, work, database)
