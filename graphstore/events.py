"""Feedback events (search, view, click, purchase) written to the graph idempotently.

Each event is an ``(:Event {id})`` node (unique id); only events whose id is new change the
interaction relationships, so a retried batch changes nothing. ``streamed`` records whether
the event was appended to the Redis feedback stream (``dpgcn.streams``), so a retry after a
failed append re-appends exactly the events that are missing there.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from neo4j import Driver

from graphstore.driver import execute

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


def write_events(
    driver: Driver, events: Sequence[EventRow], database: str = "neo4j"
) -> WriteResult:
    """Store ``events`` (ids must be unique within the batch) in one transaction."""
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
    records = execute(
        driver,
        "events/merge_events",
        {"rows": rows, "batch": uuid.uuid4().hex, "now": time.time()},
        database=database,
    )
    found = {r["id"]: r for r in records}
    new = [e.id for e in events if e.id in found and found[e.id]["is_new"]]
    dups = [e.id for e in events if e.id in found and not found[e.id]["is_new"]]
    unknown = [e.id for e in events if e.id not in found]
    to_stream = [
        e.id
        for e in events
        if e.id in found and not found[e.id]["streamed"] and found[e.id]["consent"]
    ]
    return WriteResult(new, dups, unknown, to_stream)


def mark_streamed(driver: Driver, ids: Sequence[str], database: str = "neo4j") -> int:
    if not ids:
        return 0
    records = execute(driver, "events/mark_streamed", {"ids": list(ids)}, database=database)
    return int(records[0]["marked"]) if records else 0
