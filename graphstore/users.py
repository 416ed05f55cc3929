"""Privacy operations on users: erasure and personalization consent."""

from __future__ import annotations

import time
from dataclasses import dataclass

from neo4j import Driver

from graphstore.driver import execute


@dataclass(frozen=True)
class Erasure:
    users: int
    events: int
    queries: int


def delete_user(driver: Driver, user_id: str, database: str = "neo4j") -> Erasure:
    """Erase the user node (relationships, embeddings, segment membership with it), the user's
    stored events and the queries nobody else searched. Idempotent."""
    r = execute(driver, "users/delete_user", {"user_id": user_id}, database=database)[0]
    return Erasure(int(r["users"]), int(r["events"]), int(r["queries"]))


def set_consent(driver: Driver, user_id: str, consent: bool, database: str = "neo4j") -> bool:
    """Record whether the user allows personalization (creates an unknown user)."""
    r = execute(
        driver,
        "users/set_consent",
        {"user_id": user_id, "consent": bool(consent), "now": time.time()},
        database=database,
    )[0]
    return bool(r["consent"])
