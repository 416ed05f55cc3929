"""Batched, parameterized, idempotent and resumable writes of a :class:`GraphSource`.

Nodes are written before relationships, each part in ``UNWIND $rows`` batches inside one
transaction per batch: a batch is written whole or not at all. Node statements and the
relationship statements of a section that already has relationships are ``MERGE … SET`` of
aggregated rows, so re-running a load (after an interruption, or twice) leaves identical
nodes, relationships and properties.

Internal ids: every node statement returns ``[id, internal node id]`` of its rows, which the
loader keeps (:class:`NodeIds`); relationship rows are then sent as short lists
``[source node id, target node id, properties…]`` and matched with an id seek (plus a label
check) instead of a unique-index seek per endpoint. Endpoints the load did not write itself
(nodes of an earlier load, batches a resumed load skipped) are looked up by key once per
batch and remembered. Rows whose endpoint is missing are not sent (``LoadSummary.unmatched``).

Fast path: a part whose section of the graph is empty — a node label with no node, or a
(source label, type) with no relationship, read from the count store before the part
starts — is written with ``CREATE`` instead of ``MERGE``: nothing can exist to merge with.
Loaders emit one row per node id and per pair (interactions are aggregated, node and link
rows are deduplicated here), so nothing is created twice. Two loads of the same new section
*at the same time* are not supported (both would see an empty section); pass
``fast_create=False`` for that.

Pipelining: batches are built (source rows generated, endpoints resolved, checkpoint digest
taken) by a producer thread while the previous batch is written, so the client's Python work
overlaps the server's.

Concurrent writers: CREATE batches are written by up to ``writers`` transactions at once (2
by default), so that the server's execution and commit of one batch use the second core while
the other commits; the node parts go out as one stream and the relationship parts as another
(a part's first batches follow the previous part's last ones without waiting), and batches are
still recorded in order. MERGE batches are written one at a time, alone.

Procedures: on a server with the project's procedures (the managed one), CREATE relationship
batches are sent as packed columns (int64 node ids, int64 count, float64 ts and weight) to
``dpgcn.ingest.createRelationships``, which writes them with the kernel's operations (no list
per row to pack, unpack and plan over); a batch whose values the columns cannot carry exactly
(a count that is not an int, a ts or weight that is not a float) goes through Cypher.

Resume: with ``checkpoint=<file>``, the digest and the written count of every committed batch
are recorded there after its transaction commits. Re-running the same load with the same
file skips each leading batch whose rows hash to the recorded digest, and writes the rest; a
changed source stops matching at the first changed batch and is written from there (still
idempotent). The file is removed when the load completes.

For an initial load into an empty, locally managed database there is also the offline bulk
path, :mod:`graphstore.bulk` (``neo4j-admin database import``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from types import NoneType
from typing import Any

import numpy as np
from neo4j import Driver

from graphstore import model, users
from graphstore.driver import execute, has_procedure
from graphstore.records import GraphSource, Row
from graphstore.schema import apply_schema

logger = logging.getLogger(__name__)

Progress = Callable[[str, int], None]
#: A prepared batch: the statement's ``$rows``, or the packed columns of ``link_columns``.
Payload = list[Any] | dict[str, Any]

#: (source attribute, label, MERGE statement, CREATE statement or None) of the node parts,
#: in write order (categories are few and link to their parents: always MERGE).
_NODE_PARTS = (
    ("users", model.USER, "ingest/merge_users", "ingest/create_users"),
    ("items", model.ITEM, "ingest/merge_items", "ingest/create_items"),
    ("queries", model.QUERY, "ingest/merge_queries", "ingest/create_queries"),
    ("terms", model.TERM, "ingest/merge_terms", "ingest/create_terms"),
    ("categories", model.CATEGORY, "ingest/merge_categories", None),
)


@dataclass(frozen=True)
class LinkPart:
    """One relationship part: its rows' endpoint keys and properties, in statement order."""

    part: str
    merge: str
    create: str
    src: str
    type: str
    dst: str
    keys: tuple[str, str]
    props: tuple[str, ...] = ()
    #: The statements take the type as a ``__TYPE__`` placeholder (the interactions).
    typed: bool = False


_INTERACTION_PROPS = ("count", "ts", "weight")

_LINK_PARTS = (
    LinkPart(
        "led_to",
        "ingest/merge_led_to",
        "ingest/create_led_to",
        model.QUERY,
        model.LED_TO,
        model.ITEM,
        ("query", "item"),
        ("count",),
    ),
    LinkPart(
        "query_terms",
        "ingest/merge_query_terms",
        "ingest/create_query_terms",
        model.QUERY,
        model.HAS_TERM,
        model.TERM,
        ("query", "term"),
    ),
    LinkPart(
        "item_terms",
        "ingest/merge_item_terms",
        "ingest/create_item_terms",
        model.ITEM,
        model.HAS_TERM,
        model.TERM,
        ("item", "term"),
    ),
    LinkPart(
        "item_categories",
        "ingest/merge_item_categories",
        "ingest/create_item_categories",
        model.ITEM,
        model.IN_CATEGORY,
        model.CATEGORY,
        ("item", "category"),
    ),
)


def link_parts() -> tuple[LinkPart, ...]:
    """The item/query link parts (LED_TO, HAS_TERM, IN_CATEGORY), in write order."""
    return _LINK_PARTS


def interaction_part(rel_type: str) -> LinkPart:
    """The part of one interaction type (SEARCHED targets queries, the others items)."""
    if rel_type == model.SEARCHED:
        return LinkPart(
            rel_type,
            "ingest/merge_searches",
            "ingest/create_searches",
            model.USER,
            rel_type,
            model.QUERY,
            ("user", "target"),
            _INTERACTION_PROPS,
        )
    if rel_type not in model.INTERACTIONS:
        raise ValueError(f"unknown interaction type {rel_type!r}")
    return LinkPart(
        rel_type,
        "ingest/merge_interactions",
        "ingest/create_interactions",
        model.USER,
        rel_type,
        model.ITEM,
        ("user", "target"),
        _INTERACTION_PROPS,
        typed=True,
    )


#: Every relationship part's name (the keys of ``LoadSummary.written`` that count links).
RELATIONSHIP_PARTS = (
    model.SEARCHED,
    *model.INTERACTIONS,
    *(p.part for p in _LINK_PARTS),
)
NODE_PARTS = tuple(part for part, *_ in _NODE_PARTS)


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
    #: Batches sent as packed columns to the project's procedure (the rest went to Cypher).
    packed_batches: int = 0
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


class NodeIds:
    """Internal node ids by (label, key) for one load: filled from what the node statements
    return; a key the load did not write is looked up in the graph once (per batch, for all
    such keys of the batch) and remembered, found or not."""

    def __init__(self, driver: Driver, database: str) -> None:
        self._driver = driver
        self._database = database
        self._ids: dict[str, dict[Any, int]] = {}
        self._absent: dict[str, set[Any]] = {}
        self.looked_up = 0

    def add(self, label: str, pairs: Iterable[Any]) -> None:
        """Record ``[key, internal id]`` pairs (a node statement's ``ids``)."""
        self._ids.setdefault(label, {}).update(pairs)

    def resolve(self, label: str, keys: Iterable[Any]) -> Mapping[Any, int]:
        """The id map of ``label`` once every key in ``keys`` has been looked for."""
        known = self._ids.setdefault(label, {})
        absent = self._absent.setdefault(label, set())
        wanted = {k for k in keys if k not in known and k not in absent}
        if wanted:
            records = execute(
                self._driver,
                "ingest/get_node_ids",
                {"ids": list(wanted)},
                database=self._database,
                read=True,
                label=label,
            )
            found = dict(records[0]["ids"]) if records else {}
            known.update(found)
            absent.update(wanted.difference(found))
            self.looked_up += len(wanted)
        return known


def link_endpoints(
    batch: list[Row], part: LinkPart, ids: NodeIds
) -> tuple[list[int | None], list[int | None]]:
    """The internal node ids of each row's source and target (None: not in the graph)."""
    k0, k1 = part.keys
    sources = [r[k0] for r in batch]
    targets = [r[k1] for r in batch]
    src = ids.resolve(part.src, sources)
    dst = ids.resolve(part.dst, targets)
    return list(map(src.get, sources)), list(map(dst.get, targets))


def link_rows(batch: list[Row], part: LinkPart, ids: NodeIds) -> list[list[Any]]:
    """Relationship rows as ``[source node id, target node id, properties…]``; rows with a
    missing endpoint are left out (they count as unmatched)."""
    out: list[list[Any]] = []
    props = part.props
    ends = zip(*link_endpoints(batch, part, ids), batch, strict=True)
    if props == _INTERACTION_PROPS:
        for a, b, r in ends:
            if a is not None and b is not None:
                out.append([a, b, r["count"], r["ts"], r["weight"]])
        return out
    for a, b, r in ends:
        if a is not None and b is not None:
            out.append([a, b, *(r[p] for p in props)])
    return out


#: The project's procedure for the CREATE fast path (optional: Cypher without it).
CREATE_PROCEDURE = "dpgcn.ingest.createRelationships"
#: "No count" in the procedure's int64 count column.
NO_COUNT = -(2**63)


def link_columns(batch: list[Row], part: LinkPart, ids: NodeIds) -> dict[str, Any] | None:
    """The procedure's parameters for a CREATE batch: endpoints as int64 node ids (-1 when
    missing: the procedure skips the row), properties as packed columns. None when a value
    would be stored differently than by the Cypher statement (a count that is not an int, a
    ts or weight that is not a float, or NaN): the batch then goes through Cypher."""
    if (part.src, part.type, part.dst) not in model.EDGE_TYPES:
        raise ValueError(f"{part.src}-{part.type}->{part.dst} is not in the graph model")
    sources, targets = link_endpoints(batch, part, ids)
    params: dict[str, Any] = {
        "type": part.type,
        "sourceLabel": part.src,
        "targetLabel": part.dst,
        "source": np.array([-1 if a is None else a for a in sources], "<i8"),
        "target": np.array([-1 if b is None else b for b in targets], "<i8"),
        "count": None,
        "ts": None,
        "weight": None,
    }
    for prop in part.props:
        values = [r.get(prop) for r in batch]
        kinds = set(map(type, values))
        missing = values.count(None) if NoneType in kinds else 0
        if prop == "count":
            if not kinds <= {int, NoneType}:  # bool, float, str…: Cypher stores them as they are
                return None
            if missing:
                values = [NO_COUNT if v is None else v for v in values]
            try:
                column = np.array(values, "<i8")
            except OverflowError:
                return None
            if (column == NO_COUNT).sum() != missing:  # NO_COUNT itself was a value
                return None
        else:
            if not kinds <= {float, NoneType}:
                return None
            if missing:
                values = [math.nan if v is None else v for v in values]
            column = np.array(values, "<f8")
            if np.isnan(column).sum() != missing:  # a NaN value, not a missing one
                return None
        params[prop] = column
    return {k: v.tobytes() if isinstance(v, np.ndarray) else v for k, v in params.items()}


def _unique(rows: Iterable[Row], keys: tuple[str, ...]) -> Iterator[Row]:
    """Rows with the first occurrence of each key (one node per id, one link per pair)."""
    seen: set[tuple[Any, ...]] = set()
    for row in rows:
        key = tuple(row[k] for k in keys)
        if key not in seen:
            seen.add(key)
            yield row


@dataclass
class _Batch:
    index: int
    size: int
    digest: str
    #: The written count recorded by the checkpoint (batch skipped), or None.
    done: int | None
    #: What to send: ``$rows``, or the procedure's parameters (None when skipped).
    payload: Payload | None


@dataclass
class _Job:
    """One part to write: its batches and the statement that writes them."""

    part: str
    batches: Iterator[_Batch]
    statement: str
    #: Node parts: the label whose ``[id, internal id]`` pairs the statement returns.
    label: str | None = None
    rel_type: str | None = None
    #: CREATE parts: batches may be written by several transactions at once.
    concurrent: bool = False


class _End:
    def __init__(self, error: BaseException | None) -> None:
        self.error = error


def prefetch(items: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """``items`` produced by a background thread, up to ``depth`` ahead of the consumer.

    The producer's Python work (generating rows, resolving ids) runs while the consumer
    waits for the server (socket I/O releases the GIL). A producer error is raised in the
    consumer; when the consumer stops early the producer stops too."""
    box: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(value: Any) -> bool:
        while not stop.is_set():
            try:
                box.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as e:  # handed to the consumer, raised there
            put(_End(e))
            return
        put(_End(None))

    thread = threading.Thread(target=produce, name="ingest-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            value = box.get()
            if isinstance(value, _End):
                if value.error is not None:
                    raise value.error
                return
            yield value
    finally:
        stop.set()
        thread.join(timeout=30)


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
    procedures: bool | None = None,
) -> LoadSummary:
    """Write ``source`` into the graph; returns counts of rows seen and written per part.

    ``checkpoint``: a file recording committed batches, so that re-running an interrupted
    load skips them (see the module docstring). ``fast_create``: write parts whose section
    of the graph is empty with CREATE. ``pipeline``: build the next batch in a background
    thread while one is written. ``writers``: CREATE batches written by up to this many
    transactions at once (the server then works on both cores; a deadlock between them is
    retried by the driver). MERGE batches are written one by one.
    ``procedures``: send CREATE relationship batches as packed columns to the project's
    procedure (``dpgcn.ingest.createRelationships``); None = when the server has it."""
    if writers < 1:
        raise ValueError(f"writers must be >= 1, not {writers}")
    if procedures is None:  # only the CREATE fast path uses the procedure
        procedures = fast_create and has_procedure(driver, CREATE_PROCEDURE, database)
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

    def plan(
        part: str, rows: Iterable[Row], prepare: Callable[[list[Row]], Payload]
    ) -> Iterator[_Batch]:
        """The batches of one part; a checkpoint's batches are skipped up to the first that
        differs (everything after a changed batch is written again)."""
        matching = checkpoint is not None
        for index, batch in enumerate(batched(rows, batch_size)):
            batch_digest = digest(batch) if checkpoint is not None else ""
            done = state.done(part, index, batch_digest) if matching else None
            if done is None:
                matching = False
                yield _Batch(index, len(batch), batch_digest, None, prepare(batch))
            else:
                yield _Batch(index, len(batch), batch_digest, done, None)

    def send(statement: str, payload: Payload, rel_type: str | None) -> list[Any]:
        if isinstance(payload, dict):  # packed columns for the procedure
            return execute(driver, "ingest/create_relationships", payload, database=database)
        params = {"rows": payload}
        if rel_type is not None:
            return execute(driver, statement, params, database=database, type=rel_type)
        return execute(driver, statement, params, database=database)

    def write(jobs: list[_Job]) -> None:
        """Write the parts ``jobs`` as one stream of batches: a CREATE part's batches (one
        row per node id or pair, so no two batches make the same node or relationship) go
        to up to ``writers`` transactions at once, and the next part's first batches follow
        its last ones without waiting; a MERGE batch waits until nothing else is in flight
        and is written alone. Batches are recorded and reported in stream order, when the
        oldest has committed, so the checkpoint only ever holds a committed prefix."""
        totals = {job.part: [0, 0] for job in jobs}  # rows seen, written
        pool = ThreadPoolExecutor(writers, "ingest-writer") if writers > 1 else None
        in_flight: deque[tuple[_Job, _Batch, Future[list[Any]] | None]] = deque()

        def finish_oldest() -> None:
            job, batch, future = in_flight.popleft()
            if batch.done is not None:
                n = batch.done
                summary.skipped_batches += 1
            else:
                n = 0
                if future is not None:
                    records = future.result()
                    if isinstance(batch.payload, dict):
                        summary.packed_batches += 1
                    if job.label is not None:
                        pairs = records[0]["ids"] if records else []
                        ids.add(job.label, pairs)
                        n = len(pairs)
                    else:
                        n = int(records[0]["written"]) if records else 0
                summary.batches += 1
                state.record(job.part, batch.index, batch.digest, n)
            totals[job.part][0] += batch.size
            totals[job.part][1] += n
            if progress:
                progress(job.part, batch.size)

        def stream() -> Iterator[tuple[_Job, _Batch]]:
            for job in jobs:
                for batch in job.batches:
                    yield job, batch

        try:
            for job, batch in prefetch(stream()) if pipeline else stream():
                parallel = writers if job.concurrent else 1
                while len(in_flight) >= parallel:
                    finish_oldest()
                future: Future[list[Any]] | None = None
                if batch.done is None and batch.payload:
                    if pool is not None and parallel > 1:
                        future = pool.submit(send, job.statement, batch.payload, job.rel_type)
                    else:
                        future = Future()
                        future.set_result(send(job.statement, batch.payload, job.rel_type))
                in_flight.append((job, batch, future))
                while len(in_flight) >= parallel:
                    finish_oldest()
            while in_flight:
                finish_oldest()
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        for part, (seen, written) in totals.items():
            summary.rows[part] = seen
            summary.written[part] = written

    def count_nodes(label: str) -> int:
        records = execute(driver, "ingest/count_nodes", database=database, read=True, label=label)
        return int(records[0]["n"])

    def count_links(src: str, rel_type: str) -> int:
        records = execute(
            driver, "ingest/count_links", database=database, read=True, src=src, type=rel_type
        )
        return int(records[0]["n"])

    def as_is(batch: list[Row]) -> list[Any]:
        return batch

    def without_erased(rows: Iterable[Row]) -> Iterator[Row]:
        """User rows, less the users erased before (checked in batches, by salted hash)."""
        for batch in batched(rows, batch_size):
            gone = users.erased_among(driver, [str(r["id"]) for r in batch], database)
            summary.erased += sum(str(r["id"]) in gone for r in batch)
            yield from (r for r in batch if str(r["id"]) not in gone)

    node_jobs: list[_Job] = []
    for part, label, merge, create in _NODE_PARTS:
        rows: Iterable[Row] = getattr(source, part)
        if part == "users":
            rows = without_erased(rows)
        if part == "categories":
            rows = sorted(rows, key=lambda r: r.get("parent") is not None)
        new = create is not None and fast_create and count_nodes(label) == 0
        if new:
            summary.created.append(part)
            rows = _unique(rows, ("id",))
        statement = create if new and create is not None else merge
        node_jobs.append(_Job(part, plan(part, rows, as_is), statement, label, concurrent=new))
    # every node is written (and its id known) before a relationship batch is prepared
    write(node_jobs)

    def link_job(spec: LinkPart, rows: Iterable[Row]) -> _Job:
        new = fast_create and count_links(spec.src, spec.type) == 0
        if new:
            summary.created.append(spec.part)
            if spec.props != _INTERACTION_PROPS:  # interactions are aggregated per pair
                rows = _unique(rows, spec.keys)

        def prepare(batch: list[Row]) -> Payload:
            if new and procedures:
                columns = link_columns(batch, spec, ids)
                if columns is not None:
                    return columns
            return link_rows(batch, spec, ids)

        return _Job(
            spec.part,
            plan(spec.part, rows, prepare),
            spec.create if new else spec.merge,
            rel_type=spec.type if spec.typed else None,
            concurrent=new,
        )

    # every section is counted before any is written (sections are disjoint: one
    # (source label, type) each), then all relationship parts go out as one stream
    link_jobs = [
        link_job(interaction_part(rel_type), rows) for rel_type, rows in source.interactions.items()
    ]
    link_jobs += [link_job(spec, getattr(source, spec.part)) for spec in _LINK_PARTS]
    write(link_jobs)
    state.finish()
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
        params = {k: row[k] for k in ("user", "target", *_INTERACTION_PROPS)}
        records = execute(
            driver, "ingest/merge_interaction", params, database=database, type=rel_type
        )
        written += int(records[0]["written"]) if records else 0
    return written
