"""The canonical rows every loader produces and the ingester writes.

A loader turns a source (CSV files, a log, the synthetic generator) into a :class:`GraphSource`:
plain rows for nodes and *aggregated* interactions (one row per user–target–type with a count
and the latest time), so that writing them with ``MERGE … SET`` is idempotent: loading the
same data twice leaves identical nodes, relationships and properties.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from graphstore import model

Row = dict[str, Any]


@dataclass
class GraphSource:
    """Rows for one load. Node rows need ``id``; see ``docs/graph-model.md`` for properties.

    * ``users``: id, age, gender, occupation, consent
    * ``items``: id, title, price
    * ``queries``: id (normalized text), text
    * ``terms``: id (stem)
    * ``categories``: id, name, parent (category id or None)
    * ``interactions[TYPE]``: user, target (the item, or the query for SEARCHED), count, ts,
      weight
    * ``led_to``: query, item, count — the click that followed a search
    * ``query_terms`` / ``item_terms``: query|item, term
    * ``item_categories``: item, category
    * ``rejected``: ``file:line: reason`` of each bad row skipped (``on_error="reject"``)
    * ``skipped``: rows left out on purpose, by what they were (``"events.csv: repeated
      event_id"`` → count), so a load can say what it did not write and why
    """

    name: str
    users: Iterable[Row] = ()
    items: Iterable[Row] = ()
    queries: Iterable[Row] = ()
    terms: Iterable[Row] = ()
    categories: Iterable[Row] = ()
    interactions: dict[str, Iterable[Row]] = field(default_factory=dict)
    led_to: Iterable[Row] = ()
    query_terms: Iterable[Row] = ()
    item_terms: Iterable[Row] = ()
    item_categories: Iterable[Row] = ()
    rejected: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for rel in self.interactions:
            if rel not in (*model.INTERACTIONS, model.SEARCHED):
                raise ValueError(f"unknown interaction type {rel!r}")


def aggregate(events: Iterable[tuple[str, str, float, float]]) -> Iterator[Row]:
    """(user, target, ts, weight) events → one row per pair: count, latest ts, summed weight."""
    acc: dict[tuple[str, str], list[float]] = {}
    for user, target, ts, weight in events:
        slot = acc.get((user, target))
        if slot is None:
            acc[(user, target)] = [1.0, ts, weight]
        else:
            slot[0] += 1
            slot[1] = max(slot[1], ts)
            slot[2] += weight
    for (user, target), (count, ts, weight) in acc.items():
        yield {"user": user, "target": target, "count": int(count), "ts": ts, "weight": weight}
