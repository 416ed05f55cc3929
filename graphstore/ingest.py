"""Batched, parameterized, idempotent and resumable writes of a :class:`GraphSource`.

Nodes are written before relationships, each part in ``UNWIND $rows`` batches inside one
transaction per batch: a batch is written whole or not at all. Node statements and the
relationship statements of a section that already has relationships are ``MERGE … SET`` of
aggregated rows, so re-running a load (after an interruption, or twice) leaves identical
nodes, relationships and properties. Every statement is a Cypher file of ``cypher/ingest``.

:func:`load_source` plans, then writes:

* :mod:`graphstore.ingest_parts` — what is written: the parts and their statements;
* :mod:`graphstore.ingest_plan` — the planner: which parts, CREATE (a new section of the
  graph: the fast path) or MERGE per part, and which batches a resumed load skips;
* :mod:`graphstore.ingest_batches` — batches, the checkpoint, endpoint ids, relationship rows;
* :mod:`graphstore.ingest_write` — the writer: prefetch, concurrent CREATE transactions,
  checkpoint records in commit order.

Two loads of the same new section *at the same time* are not supported (both would see an
empty section and CREATE); pass ``fast_create=False`` for that.

Resume: with ``checkpoint=<file>``, the digest and the written count of every committed batch
are recorded there after its transaction commits. Re-running the same load with the same
file skips each leading batch whose rows hash to the recorded digest, and writes the rest; a
changed source stops matching at the first changed batch and is written from there (still
idempotent). The file is removed when the load completes.

For an initial load into an empty, locally managed database there is also the offline bulk
path, :mod:`dpgcn.bulk_import` (``neo4j-admin database import``), chosen by the caller
(``dpgcn load --bulk``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from neo4j import Driver

from graphstore import model
from graphstore.driver import execute
from graphstore.ingest_batches import Checkpoint, NodeIds, digest
from graphstore.ingest_parts import (
    INTERACTION_PROPS,
    NODE_PARTS,
    RELATIONSHIP_PARTS,
    LinkPart,
    interaction_part,
    link_parts,
)
from graphstore.ingest_plan import plan_load
from graphstore.ingest_write import Progress, Writer
from graphstore.records import GraphSource, Row
from graphstore.schema import apply_schema

__all__ = [
    "COUNTED_LABELS",
    "COUNTED_TYPES",
    "NODE_PARTS",
    "RELATIONSHIP_PARTS",
    "Checkpoint",
    "LinkPart",
    "LoadSummary",
    "NodeIds",
    "count_graph",
    "digest",
    "interaction_part",
    "link_parts",
    "load_source",
    "write_naive",
]

logger = logging.getLogger(__name__)


@dataclass
class LoadSummary:
    """What one load did. ``rows``/``written``: rows the source sent and rows the statements
    wrote per part (a MERGE of an existing node or relationship counts as written, so these
    are the source's sizes). ``before``/``after``: the graph's nodes per label and
    relationships per type (:func:`count_graph`) when the load started and ended, so
    :attr:`changes` is what the load added (0 everywhere for a second load of the same
    files). ``rejected``/``skipped``: the loader's bad rows and rows left out on purpose."""

    source: str
    rows: dict[str, int] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)
    #: Rows the loader left out on purpose, by what they were (``GraphSource.skipped``).
    skipped: dict[str, int] = field(default_factory=dict)
    #: The graph's counts (:func:`count_graph`) before and after the load.
    before: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)
    #: Batches written in this run, and batches skipped because a checkpoint had them.
    batches: int = 0
    skipped_batches: int = 0
    #: Parts written with CREATE (their section of the graph was new).
    created: list[str] = field(default_factory=list)
    #: Relationship endpoints this load did not write itself, looked up by key.
    looked_up: int = 0
    #: User rows left out because the user was erased (``graphstore.users``); their
    #: interactions then count as unmatched.
    erased: int = 0

    @property
    def unmatched(self) -> dict[str, int]:
        """Rows whose endpoints were missing (written < rows) per part."""
        return {
            k: self.rows[k] - self.written.get(k, 0)
            for k in self.rows
            if self.rows[k] != self.written.get(k, 0)
        }

    @property
    def changes(self) -> dict[str, int]:
        """``after - before`` per node label and relationship type (empty when not counted)."""
        return {k: self.after.get(k, 0) - self.before.get(k, 0) for k in self.after}

    @property
    def relationships(self) -> int:
        """Relationships written (all relationship parts)."""
        return sum(self.written.get(p, 0) for p in RELATIONSHIP_PARTS)

    @property
    def nodes(self) -> int:
        """Nodes written (every node part)."""
        return sum(self.written.get(p, 0) for p in NODE_PARTS)


#: The node labels and relationship types a load writes, in the order a summary shows them.
COUNTED_LABELS = model.NODE_LABELS
COUNTED_TYPES = (
    model.SEARCHED,
    *model.INTERACTIONS,
    model.LED_TO,
    model.HAS_TERM,
    model.IN_CATEGORY,
    model.SUBCATEGORY_OF,
)


def count_graph(driver: Driver, database: str = "neo4j") -> dict[str, int]:
    """Nodes per label of :data:`COUNTED_LABELS` and relationships per type of
    :data:`COUNTED_TYPES` (summed over their source labels), read from the count store."""
    counts: dict[str, int] = {}
    for label in COUNTED_LABELS:
        records = execute(driver, "ingest/count_nodes", database=database, read=True, label=label)
        counts[label] = int(records[0]["n"])
    sources = dict.fromkeys((src, rel) for src, rel, _ in model.EDGE_TYPES if rel in COUNTED_TYPES)
    for rel in COUNTED_TYPES:
        counts[rel] = 0
    for src, rel in sources:
        records = execute(
            driver, "ingest/count_links", database=database, read=True, src=src, type=rel
        )
        counts[rel] += int(records[0]["n"])
    return counts


def load_source(
    driver: Driver,
    source: GraphSource,
    *,
    database: str = "neo4j",
    batch_size: int = 10000,
    progress: Progress | None = None,
    checkpoint: Path | None = None,
    fast_create: bool = True,
    pipeline: bool = True,
    writers: int = 2,
) -> LoadSummary:
    """Write ``source`` into the graph; returns counts of rows seen and written per part.

    ``checkpoint``: a file recording committed batches, so that re-running an interrupted
    load skips them (see the module docstring). ``fast_create``: write parts whose section
    of the graph is empty with CREATE. ``pipeline``: build the next batch in a background
    thread while one is written. ``writers``: CREATE batches written by up to this many
    transactions at once (the server then works on both cores; a deadlock between them is
    retried by the driver). MERGE batches are written one by one."""
    if writers < 1:
        raise ValueError(f"writers must be >= 1, not {writers}")
    apply_schema(driver, database)
    summary = LoadSummary(
        source=source.name,
        rejected=list(source.rejected),
        skipped=dict(source.skipped),
        before=count_graph(driver, database),
    )
    state = Checkpoint(checkpoint, source.name, batch_size)
    if checkpoint is not None:
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
    ids = NodeIds(driver, database)
    plan = plan_load(
        driver,
        source,
        database=database,
        batch_size=batch_size,
        checkpoint=state,
        ids=ids,
        fast_create=fast_create,
    )
    writer = Writer(driver, database, state, ids, writers, pipeline, progress)
    # every node is written (and its id known) before a relationship batch is prepared
    for jobs in (plan.nodes, plan.links):
        done = writer.write(jobs)
        summary.rows.update(done.rows)
        summary.written.update(done.written)
        summary.batches += done.batches
        summary.skipped_batches += done.skipped_batches
    state.finish()
    summary.created = plan.created
    summary.erased = plan.erased
    summary.looked_up = ids.looked_up
    summary.after = count_graph(driver, database)
    logger.info("loaded %s: %s", source.name, summary.written)
    return summary


def write_naive(
    driver: Driver, rel_type: str, rows: Iterable[Row], *, database: str = "neo4j"
) -> int:
    """The baseline the ingestion benchmark measures the batched loader against: one
    interaction per transaction, MERGE with a unique-index seek per endpoint. Returns the
    rows written (both endpoints found)."""
    if rel_type not in model.INTERACTIONS:
        raise ValueError(f"write_naive writes user → item interactions, not {rel_type!r}")
    written = 0
    for row in rows:
        params = {k: row[k] for k in ("user", "target", *INTERACTION_PROPS)}
        records = execute(
            driver, "ingest/merge_interaction", params, database=database, type=rel_type
        )
        written += int(records[0]["written"]) if records else 0
    return written
