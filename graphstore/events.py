"""Feedback events (search, view, click, purchase) written to the graph idempotently.

Each event is an ``(:Event {id})`` node (unique id); only events whose id is new change the
interaction relationships, so a retried batch changes nothing. ``streamed`` records whether
the event was appended to the Redis feedback stream (``dpgcn.streams``), so a retry after a
failed append re-appends exactly the events that are missing there.

Events of an erased user (``graphstore.users``: a tombstone with the salted hash of the id) are
skipped — neither stored nor applied — so they cannot re-create the user; the salt is read in
the same transaction as the write. An erasure racing the write cannot be outrun either: the
erasure locks the user first, and the write checks the tombstones again before it commits
(``graphstore.users.run_guarded``): whichever commits second sees the other.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from neo4j import Driver, ManagedTransaction

from graphstore.driver import execute
from graphstore.users import id_hash, read_salt, run_guarded, run_named

#: Why an event was skipped (not stored, graph unchanged).
UNKNOWN_ITEM = "unknown item"
USER_ERASED = "user erased"

#: Event types and the relationship each one counts up.
EVENT_TYPES = ("search", "view", "click", "purchase")


@dataclass(frozen=True)
class EventRow:
    id: str
    user_id: str
    type: str
    ts: float
    item_id: str | None = None
    #: Normalized query text (the ``Query`` id), ``None`` when the event has none.
    query: str | None = None
    query_text: str | None = None


@dataclass(frozen=True)
class WriteResult:
    #: Ids stored by this call (first time seen).
    new: list[str]
    #: Ids that were already stored (a retry): nothing changed for them.
    duplicates: list[str]
    #: Ids naming an unknown item: not stored.
    unknown_item: list[str]
    #: Ids to append to the feedback stream now: new or earlier appends that failed, of users
    #: who allow personalization.
    to_stream: list[str]
    #: Ids of events of erased users: not stored (the user is not re-created).
    erased_user: list[str] = field(default_factory=list)

    @property
    def skipped(self) -> dict[str, str]:
        """Every skipped event id with the reason (``"unknown item"``, ``"user erased"``)."""
        return {
            **{i: UNKNOWN_ITEM for i in self.unknown_item},
            **{i: USER_ERASED for i in self.erased_user},
        }


def write_events(
    driver: Driver, events: Sequence[EventRow], database: str = "neo4j"
) -> WriteResult:
    """Store ``events`` (ids must be unique within the batch) in one transaction; events
    naming an unknown item or an erased user are skipped (``WriteResult.skipped``)."""
    rows: list[dict[str, Any]] = [
        {
            "id": e.id,
            "user_id": e.user_id,
            "type": e.type,
            "item_id": e.item_id,
            "query": e.query,
            "query_text": e.query_text,
            "ts": float(e.ts),
        }
        for e in events
    ]
    if len({r["id"] for r in rows}) != len(rows):
        raise ValueError("event ids must be unique within a batch")
    if not rows:
        return WriteResult([], [], [], [])

    def work(tx: ManagedTransaction) -> list[Any]:
        salt = read_salt(tx)
        for r in rows:
            r["id_hash"] = id_hash(r["user_id"], salt) if salt is not None else None
        return run_named(
            tx, "events/merge_events", {"rows": rows, "batch": uuid.uuid4().hex, "now": time.time()}
        )

    user_of = {r["id"]: r["user_id"] for r in rows}

    def written_users(records: list[Any]) -> list[str]:
        return [user_of[r["id"]] for r in records if r["skipped"] is None and r["is_new"]]

    records = run_guarded(driver, work, written_users, database)
    erased = {r["id"] for r in records if r["skipped"] is not None}
    found = {r["id"]: r for r in records if r["skipped"] is None}
    new = [e.id for e in events if e.id in found and found[e.id]["is_new"]]
    dups = [e.id for e in events if e.id in found and not found[e.id]["is_new"]]
    erased_ids = [e.id for e in events if e.id in erased]
    unknown = [e.id for e in events if e.id not in found and e.id not in erased]
    to_stream = [
        e.id
        for e in events
        if e.id in found and not found[e.id]["streamed"] and found[e.id]["consent"]
    ]
    return WriteResult(new, dups, unknown, to_stream, erased_ids)


def unstreamed_events(
    driver: Driver, before: float, limit: int = 1000, database: str = "neo4j"
) -> list[EventRow]:
    """The outbox: stored events received at or before ``before`` (epoch seconds) that were
    never appended to the feedback stream, oldest first, of users who allow personalization."""
    records = execute(
        driver,
        "events/get_unstreamed",
        {"before": float(before), "limit": int(limit)},
        database=database,
        read=True,
    )
    return [
        EventRow(
            id=r["id"],
            user_id=r["user_id"],
            type=r["type"],
            ts=float(r["ts"]),
            item_id=r["item_id"],
            query=r["query"],
        )
        for r in records
    ]


def mark_streamed(driver: Driver, ids: Sequence[str], database: str = "neo4j") -> int:
    if not ids:
        return 0
    records = execute(driver, "events/mark_streamed", {"ids": list(ids)}, database=database)
    return int(records[0]["marked"]) if records else 0
