"""Batched, parameterized, idempotent writes of a :class:`GraphSource` into Neo4j.

Nodes are written before relationships, each part in ``UNWIND $rows`` batches inside one
transaction per batch: a batch is written whole or not at all, and since every statement is a
``MERGE … SET`` of aggregated rows, re-running a load (after an interruption, or twice) leaves
identical nodes, relationships and properties.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

from neo4j import Driver

from graphstore import model
from graphstore.driver import execute
from graphstore.records import GraphSource, Row
from graphstore.schema import apply_schema

logger = logging.getLogger(__name__)

Progress = Callable[[str, int], None]

#: (source attribute, statement name, relationship type or None) in write order.
_NODE_PARTS = (
    ("users", "ingest/merge_users"),
    ("items", "ingest/merge_items"),
    ("queries", "ingest/merge_queries"),
    ("terms", "ingest/merge_terms"),
    ("categories", "ingest/merge_categories"),
)
_LINK_PARTS = (
    ("led_to", "ingest/merge_led_to"),
    ("query_terms", "ingest/merge_query_terms"),
    ("item_terms", "ingest/merge_item_terms"),
    ("item_categories", "ingest/merge_item_categories"),
)


@dataclass
class LoadSummary:
    source: str
    rows: dict[str, int] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)

    @property
    def unmatched(self) -> dict[str, int]:
        """Rows whose endpoints were missing (written < rows) per part."""
        return {
            k: self.rows[k] - self.written.get(k, 0)
            for k in self.rows
            if self.rows[k] != self.written.get(k, 0)
        }


def batched(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    it = iter(rows)
    while batch := list(islice(it, size)):
        yield batch


def load_source(
    driver: Driver,
    source: GraphSource,
    *,
    database: str = "neo4j",
    batch_size: int = 5000,
    progress: Progress | None = None,
) -> LoadSummary:
    """Write ``source`` into the graph; returns counts of rows seen and written per part."""
    apply_schema(driver, database)
    summary = LoadSummary(source=source.name, rejected=list(source.rejected))

    def write(part: str, rows: Iterable[Row], name: str, rel_type: str | None = None) -> None:
        seen = written = 0
        for batch in batched(rows, batch_size):
            params = {"rows": batch}
            if rel_type:
                records = execute(driver, name, params, database=database, type=rel_type)
            else:
                records = execute(driver, name, params, database=database)
            seen += len(batch)
            written += int(records[0]["written"]) if records else 0
            if progress:
                progress(part, len(batch))
        summary.rows[part] = seen
        summary.written[part] = written

    categories = sorted(source.categories, key=lambda r: r.get("parent") is not None)
    for part, name in _NODE_PARTS:
        rows = categories if part == "categories" else getattr(source, part)
        write(part, rows, name)
    for rel_type, rows in source.interactions.items():
        if rel_type == model.SEARCHED:
            write(rel_type, rows, "ingest/merge_searches")
        else:
            write(rel_type, rows, "ingest/merge_interactions", rel_type)
    for part, name in _LINK_PARTS:
        write(part, getattr(source, part), name)
    logger.info("loaded %s: %s", source.name, summary.written)
    return summary
