"""Batched, parameterized, idempotent and resumable writes of a :class:`GraphSource`.

Nodes are written before relationships, each part in ``UNWIND $rows`` batches inside one
transaction per batch: a batch is written whole or not at all. Every node statement and the
relationship statements of a section that already has relationships are ``MERGE … SET`` of
aggregated rows, so re-running a load (after an interruption, or twice) leaves identical
nodes, relationships and properties.

Fast path: a relationship part whose (source label, type) has no relationship yet in the
graph (read from the count store before the part starts) is written with ``CREATE`` instead
of ``MERGE`` — nothing can exist to merge with. Loaders emit one row per pair (interactions
are aggregated, link rows are deduplicated here), so no pair is created twice. Two loads of
the same new section *at the same time* are not supported (both would see an empty section);
pass ``fast_create=False`` for that.

Resume: with ``checkpoint=<file>``, the digest and the written count of every committed batch
are recorded there after its transaction commits. Re-running the same load with the same
file skips each leading batch whose rows hash to the recorded digest, and writes the rest; a
changed source stops matching at the first changed batch and is written from there (still
idempotent). The file is removed when the load completes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from neo4j import Driver

from graphstore import model
from graphstore.driver import execute
from graphstore.records import GraphSource, Row
from graphstore.schema import apply_schema

logger = logging.getLogger(__name__)

Progress = Callable[[str, int], None]

#: (source attribute, statement name) of the node parts, in write order.
_NODE_PARTS = (
    ("users", "ingest/merge_users"),
    ("items", "ingest/merge_items"),
    ("queries", "ingest/merge_queries"),
    ("terms", "ingest/merge_terms"),
    ("categories", "ingest/merge_categories"),
)
#: (source attribute, MERGE statement, CREATE statement, source label, type).
_LINK_PARTS = (
    ("led_to", "ingest/merge_led_to", "ingest/create_led_to", model.QUERY, model.LED_TO),
    (
        "query_terms",
        "ingest/merge_query_terms",
        "ingest/create_query_terms",
        model.QUERY,
        model.HAS_TERM,
    ),
    (
        "item_terms",
        "ingest/merge_item_terms",
        "ingest/create_item_terms",
        model.ITEM,
        model.HAS_TERM,
    ),
    (
        "item_categories",
        "ingest/merge_item_categories",
        "ingest/create_item_categories",
        model.ITEM,
        model.IN_CATEGORY,
    ),
)
_LINK_KEYS = {
    "led_to": ("query", "item"),
    "query_terms": ("query", "term"),
    "item_terms": ("item", "term"),
    "item_categories": ("item", "category"),
}


@dataclass
class LoadSummary:
    source: str
    rows: dict[str, int] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)
    #: Batches written in this run, and batches skipped because a checkpoint had them.
    batches: int = 0
    skipped_batches: int = 0
    #: Relationship parts written with CREATE (their section of the graph was new).
    created: list[str] = field(default_factory=list)

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


def digest(batch: list[Row]) -> str:
    """A stable content hash of one batch of rows (the checkpoint's identity of a batch)."""
    text = json.dumps(batch, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


class Checkpoint:
    """Per-part lists of (digest, written) of the committed batches of one load, in a file
    rewritten atomically after every batch."""

    def __init__(self, path: Path | None, source: str, batch_size: int) -> None:
        self.path = path
        self.key = {"source": source, "batch_size": batch_size}
        self.parts: dict[str, list[list[Any]]] = {}
        if path is not None and path.is_file():
            try:
                saved = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                logger.warning("ignoring unreadable load checkpoint %s", path)
                saved = {}
            if saved.get("key") == self.key:
                self.parts = saved.get("parts", {})
                logger.info("resuming %s from checkpoint %s", source, path)

    def done(self, part: str, index: int, batch_digest: str) -> int | None:
        """The written count of batch ``index`` of ``part`` if it was committed with the
        same content; None if it has to be written."""
        committed = self.parts.get(part, [])
        if index < len(committed) and committed[index][0] == batch_digest:
            return int(committed[index][1])
        return None

    def record(self, part: str, index: int, batch_digest: str, written: int) -> None:
        if self.path is None:
            return
        committed = self.parts.setdefault(part, [])
        del committed[index:]  # a changed batch invalidates whatever was recorded after it
        committed.append([batch_digest, written])
        tmp = self.path.with_name(self.path.name + f".tmp-{os.getpid()}")
        tmp.write_text(json.dumps({"key": self.key, "parts": self.parts}))
        tmp.replace(self.path)

    def finish(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def _unique(rows: Iterable[Row], keys: tuple[str, str]) -> Iterator[Row]:
    seen: set[tuple[Any, Any]] = set()
    for row in rows:
        key = (row[keys[0]], row[keys[1]])
        if key not in seen:
            seen.add(key)
            yield row


def load_source(
    driver: Driver,
    source: GraphSource,
    *,
    database: str = "neo4j",
    batch_size: int = 5000,
    progress: Progress | None = None,
    checkpoint: Path | None = None,
    fast_create: bool = True,
) -> LoadSummary:
    """Write ``source`` into the graph; returns counts of rows seen and written per part.

    ``checkpoint``: a file recording committed batches, so that re-running an interrupted
    load skips them (see the module docstring). ``fast_create``: write relationship parts
    whose section of the graph is empty with CREATE."""
    apply_schema(driver, database)
    summary = LoadSummary(source=source.name, rejected=list(source.rejected))
    state = Checkpoint(checkpoint, source.name, batch_size)
    if checkpoint is not None:
        checkpoint.parent.mkdir(parents=True, exist_ok=True)

    def write(part: str, rows: Iterable[Row], name: str, rel_type: str | None = None) -> None:
        seen = written = 0
        for index, batch in enumerate(batched(rows, batch_size)):
            batch_digest = digest(batch) if checkpoint is not None else ""
            done = state.done(part, index, batch_digest) if checkpoint is not None else None
            if done is not None:
                n = done
                summary.skipped_batches += 1
            else:
                params = {"rows": batch}
                if rel_type:
                    records = execute(driver, name, params, database=database, type=rel_type)
                else:
                    records = execute(driver, name, params, database=database)
                n = int(records[0]["written"]) if records else 0
                summary.batches += 1
                state.record(part, index, batch_digest, n)
            seen += len(batch)
            written += n
            if progress:
                progress(part, len(batch))
        summary.rows[part] = seen
        summary.written[part] = written

    def is_new(src: str, rel_type: str) -> bool:
        if not fast_create:
            return False
        records = execute(
            driver, "ingest/count_links", database=database, read=True, src=src, type=rel_type
        )
        return int(records[0]["n"]) == 0

    categories = sorted(source.categories, key=lambda r: r.get("parent") is not None)
    for part, name in _NODE_PARTS:
        rows = categories if part == "categories" else getattr(source, part)
        write(part, rows, name)
    for rel_type, rows in source.interactions.items():
        new = is_new(model.USER, rel_type)
        if new:
            summary.created.append(rel_type)
        if rel_type == model.SEARCHED:
            name = "ingest/create_searches" if new else "ingest/merge_searches"
            write(rel_type, rows, name)
        else:
            name = "ingest/create_interactions" if new else "ingest/merge_interactions"
            write(rel_type, rows, name, rel_type)
    for part, merge, create, src, rel_type in _LINK_PARTS:
        new = is_new(src, rel_type)
        rows = getattr(source, part)
        if new:
            summary.created.append(part)
            rows = _unique(rows, _LINK_KEYS[part])
        write(part, rows, create if new else merge)
    state.finish()
    logger.info("loaded %s: %s", source.name, summary.written)
    return summary
