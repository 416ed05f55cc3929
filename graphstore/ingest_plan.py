"""The planner of a load: which parts are written, in which order, by which statement, and
which of their batches a checkpoint lets a resumed load skip.

Fast path: a part whose section of the graph is empty — a node label with no node, or a
(source label, type) with no relationship, read from the count store before anything is
written — gets its ``CREATE`` statement instead of ``MERGE``: nothing can exist to merge
with. Loaders emit one row per node id and per pair (interactions are aggregated, node and
link rows are deduplicated here), so nothing is created twice.

The plan reads the graph (counts; erased users and endpoint ids while its batches are drawn)
and writes nothing: :mod:`graphstore.ingest_write` sends its batches. Batches are drawn
lazily, so relationship rows are resolved to node ids only after the node parts are written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from neo4j import Driver

from graphstore import users
from graphstore.driver import execute
from graphstore.ingest_batches import (
    Checkpoint,
    NodeIds,
    batched,
    digest,
    link_rows,
    unique_rows,
)
from graphstore.ingest_parts import (
    INTERACTION_PROPS,
    NODE_PART_SPECS,
    LinkPart,
    interaction_part,
    link_parts,
)
from graphstore.records import GraphSource, Row


@dataclass
class Batch:
    """One batch of a part, as the writer gets it."""

    index: int
    size: int
    digest: str
    #: The written count recorded by the checkpoint (batch skipped), or None.
    done: int | None
    #: The statement's ``$rows`` (None when skipped).
    rows: list[Any] | None


@dataclass
class Job:
    """One part to write: its batches and the statement that writes them."""

    part: str
    batches: Iterator[Batch]
    statement: str
    #: Node parts: the label whose ``[id, internal id]`` pairs the statement returns.
    label: str | None = None
    rel_type: str | None = None
    #: CREATE parts: batches may be written by several transactions at once.
    concurrent: bool = False


@dataclass
class LoadPlan:
    """The node parts (written first) and the relationship parts of one load."""

    nodes: list[Job]
    links: list[Job]
    #: Parts written with CREATE (their section of the graph was new), in write order.
    created: list[str] = field(default_factory=list)
    #: User rows left out because the user was erased (counted as the batches are drawn).
    erased: int = 0


def plan_batches(
    part: str,
    rows: Iterable[Row],
    batch_size: int,
    checkpoint: Checkpoint,
    prepare: Callable[[list[Row]], list[Any]],
) -> Iterator[Batch]:
    """The batches of one part. With a checkpoint file, its recorded batches are skipped up
    to the first that differs (everything after a changed batch is written again)."""
    resume = checkpoint.path is not None
    matching = resume
    for index, batch in enumerate(batched(rows, batch_size)):
        batch_digest = digest(batch) if resume else ""
        done = checkpoint.done(part, index, batch_digest) if matching else None
        if done is None:
            matching = False
            yield Batch(index, len(batch), batch_digest, None, prepare(batch))
        else:
            yield Batch(index, len(batch), batch_digest, done, None)


def _as_is(batch: list[Row]) -> list[Any]:
    return batch


def plan_load(
    driver: Driver,
    source: GraphSource,
    *,
    database: str,
    batch_size: int,
    checkpoint: Checkpoint,
    ids: NodeIds,
    fast_create: bool = True,
) -> LoadPlan:
    """The plan of writing ``source``: every section is counted before anything is written
    (node statements create no relationship of a counted section, and the sections are
    disjoint: one label, or one (source label, type), each)."""
    plan = LoadPlan([], [])

    def count_nodes(label: str) -> int:
        records = execute(driver, "ingest/count_nodes", database=database, read=True, label=label)
        return int(records[0]["n"])

    def count_links(src: str, rel_type: str) -> int:
        records = execute(
            driver, "ingest/count_links", database=database, read=True, src=src, type=rel_type
        )
        return int(records[0]["n"])

    def without_erased(rows: Iterable[Row]) -> Iterator[Row]:
        """User rows, less the users erased before (checked in batches, by salted hash)."""
        for batch in batched(rows, batch_size):
            gone = users.erased_among(driver, [str(r["id"]) for r in batch], database)
            plan.erased += sum(str(r["id"]) in gone for r in batch)
            yield from (r for r in batch if str(r["id"]) not in gone)

    for spec in NODE_PART_SPECS:
        rows: Iterable[Row] = getattr(source, spec.part)
        if spec.part == "users":
            rows = without_erased(rows)
        if spec.part == "categories":  # parents first
            rows = sorted(rows, key=lambda r: r.get("parent") is not None)
        new = spec.create is not None and fast_create and count_nodes(spec.label) == 0
        if new:
            plan.created.append(spec.part)
            rows = unique_rows(rows, ("id",))
        plan.nodes.append(
            Job(
                spec.part,
                plan_batches(spec.part, rows, batch_size, checkpoint, _as_is),
                spec.create if new and spec.create is not None else spec.merge,
                spec.label,
                concurrent=new,
            )
        )

    def link_job(spec: LinkPart, rows: Iterable[Row]) -> Job:
        new = fast_create and count_links(spec.src, spec.type) == 0
        if new:
            plan.created.append(spec.part)
            if spec.props != INTERACTION_PROPS:  # interactions are aggregated per pair
                rows = unique_rows(rows, spec.keys)

        def prepare(batch: list[Row]) -> list[Any]:
            return link_rows(batch, spec, ids)

        return Job(
            spec.part,
            plan_batches(spec.part, rows, batch_size, checkpoint, prepare),
            spec.create if new else spec.merge,
            rel_type=spec.type if spec.typed else None,
            concurrent=new,
        )

    plan.links = [
        link_job(interaction_part(rel_type), rows) for rel_type, rows in source.interactions.items()
    ]
    plan.links += [link_job(spec, getattr(source, spec.part)) for spec in link_parts()]
    return plan
