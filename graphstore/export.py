"""Export the graph, or a part of it (:class:`Selection`), to the files ``training`` reads
(:mod:`graphstore.export_format`, docs/export-format.md); :func:`export_source` writes the same
files from parsed rows without Neo4j.

The selection's nodes are read here; relationship columns and the mapping of their endpoints
to rows are :mod:`graphstore.export_columns`, the static user features
:mod:`graphstore.export_features`."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from neo4j import Driver

from graphstore import model
from graphstore.driver import execute, has_procedure
from graphstore.errors import GraphStoreError
from graphstore.export_columns import (
    COLUMNS_PROCEDURE,
    OTHER_TYPES,
    READERS,
    USER_TYPES,
    Columns,
    EdgeArrays,
    NodeRows,
    concat_columns,
    keep_active_users,
    map_types,
    relationship_columns,
    type_columns,
)
from graphstore.export_features import UserColumns, user_features
from graphstore.export_format import query_task_rows, write_export, write_query_task
from graphstore.records import GraphSource

logger = logging.getLogger(__name__)

#: Source nodes per edge query: one record of columns per batch, never one per edge.
EDGE_BATCH = 20_000


@dataclass(frozen=True)
class Selection:
    """Which part of the graph an export holds (recorded in meta.json as ``filters``).

    * nothing set: the whole graph;
    * ``users`` (+ ``hops``): the ``hops``-hop neighbourhood of these users (either direction,
      every relationship type of the model) and the relationships among the reached nodes;
    * ``segment``: the members of ``(:Segment {id})`` with all their relationships, and the
      whole catalogue (items, queries, terms, categories);
    * ``since`` / ``until`` (with any of the above): only interactions (user relationships)
      with ``ts`` in ``[since, until)``, and only users with at least one of them.

    Users without consent are never exported, and a k-hop walk does not pass through them.
    """

    users: tuple[str, ...] | None = None
    hops: int = 1
    segment: str | None = None
    since: float | None = None
    until: float | None = None

    def __post_init__(self) -> None:
        if self.users is not None and self.segment is not None:
            raise GraphStoreError("choose a user set or a segment, not both")
        if self.users is not None and not self.users:
            raise GraphStoreError("a k-hop export needs at least one user id")
        if self.hops < 0:
            raise GraphStoreError(f"hops must be >= 0, not {self.hops}")
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise GraphStoreError(f"empty time window: since {self.since} >= until {self.until}")

    @property
    def windowed(self) -> bool:
        return self.since is not None or self.until is not None

    def filters(self) -> dict[str, Any]:
        out: dict[str, Any]
        if self.users is not None:
            out = {"scope": "k-hop", "users": list(self.users), "hops": self.hops}
        elif self.segment is not None:
            out = {"scope": "segment", "segment": self.segment}
        else:
            out = {"scope": "all"}
        if self.windowed:
            out["time_window"] = {"since": self.since, "until": self.until}
        return out


_NO_NODES: dict[str, list[Any]] = {"nid": [], "id": []}
_NO_USERS: dict[str, list[Any]] = {"nid": [], "id": [], "age": [], "gender": [], "occupation": []}


def _one(records: list[Any]) -> Any:
    """The single record of a ``collect()`` query (always one, but be safe)."""
    return records[0] if records else _NO_NODES


def _user_part(record: Any) -> tuple[NodeRows, UserColumns]:
    return NodeRows(np.asarray(record["nid"], dtype=np.int64), list(record["id"])), UserColumns.of(
        record
    )


def _fetch_users(driver: Driver, sel: Selection, database: str) -> tuple[NodeRows, UserColumns]:
    if sel.users is not None:
        records = execute(
            driver, "export/get_users_by_id", {"ids": list(sel.users)}, database=database, read=True
        )
    elif sel.segment is not None:
        records = execute(
            driver,
            "export/get_segment_users",
            {"segment": sel.segment},
            database=database,
            read=True,
        )
    else:
        records = execute(driver, "export/get_user_columns", database=database, read=True)
    return _user_part(records[0] if records else _NO_USERS)


def _expand(
    driver: Driver, seeds: np.ndarray, hops: int, batch: int, database: str
) -> dict[str, set[int]]:
    """Internal ids per label within ``hops`` hops of ``seeds`` (the seeds included)."""
    reached: dict[str, set[int]] = {label: set() for label in model.NODE_LABELS}
    reached[model.USER].update(seeds.tolist())
    frontier = set(seeds.tolist())
    types = sorted({t for _, t, _ in model.EDGE_TYPES})
    for _ in range(hops):
        found: set[int] = set()
        nids = sorted(frontier)
        for start in range(0, len(nids), batch):
            for record in execute(
                driver,
                "export/get_neighbours",
                {
                    "nids": nids[start : start + batch],
                    "types": types,
                    "labels": list(model.NODE_LABELS),
                },
                database=database,
                read=True,
            ):
                new = set(record["nids"]) - reached[record["label"]]
                reached[record["label"]].update(new)
                found.update(new)
        frontier = found
        if not frontier:
            break
    return reached


def _select_nodes(
    driver: Driver, sel: Selection, batch: int, database: str
) -> tuple[dict[str, NodeRows], UserColumns]:
    users, user_cols = _fetch_users(driver, sel, database)
    nodes: dict[str, NodeRows] = {model.USER: users}
    if sel.users is not None:
        reached = _expand(driver, users.nid, sel.hops, batch, database)
        more = np.array(sorted(reached[model.USER] - set(users.nid.tolist())), dtype=np.int64)
        if len(more):
            records = execute(
                driver,
                "export/get_users_by_node",
                {"nids": more.tolist()},
                database=database,
                read=True,
            )
            extra, extra_cols = _user_part(records[0] if records else _NO_USERS)
            nodes[model.USER] = NodeRows(
                np.concatenate([users.nid, extra.nid]), users.ids + extra.ids
            )
            user_cols = user_cols.concat(extra_cols)
        for label in (model.ITEM, model.QUERY, model.TERM, model.CATEGORY):
            nids = sorted(reached[label])
            rec = _one(
                execute(
                    driver,
                    "export/get_nodes_by_node",
                    {"nids": nids},
                    database=database,
                    read=True,
                    label=label,
                )
            )
            nodes[label] = NodeRows(np.asarray(rec["nid"], dtype=np.int64), list(rec["id"]))
    else:
        for label in (model.ITEM, model.QUERY, model.TERM, model.CATEGORY):
            rec = _one(
                execute(
                    driver, "export/get_node_columns", database=database, read=True, label=label
                )
            )
            nodes[label] = NodeRows(np.asarray(rec["nid"], dtype=np.int64), list(rec["id"]))
    return nodes, user_cols


def _fetch_edges(
    driver: Driver,
    nodes: dict[str, NodeRows],
    sel: Selection,
    batch: int,
    database: str,
    workers: int = 1,
) -> EdgeArrays:
    """Every relationship among the selected nodes, as index columns (numpy assembly).

    The (edge type, source batch) queries are independent reads; ``workers`` > 1 runs them
    on that many threads (the driver is thread-safe; each query has its own session)."""

    def fetch(job: tuple[str, str, list[int]]) -> Columns:
        src, rel, nids = job
        windowed = sel.windowed and src == model.USER
        params: dict[str, Any] = {
            "nids": nids,
            "missing": math.nan,
            "since": sel.since if windowed else None,
            "until": sel.until if windowed else None,
        }
        records = execute(
            driver,
            "export/get_edge_columns",
            params,
            database=database,
            read=True,
            src=src,
            type=rel,
        )
        rec = records[0] if records else {"s": [], "t": [], "ts": [], "w": []}
        return (
            np.asarray(rec["s"], dtype=np.int64),
            np.asarray(rec["t"], dtype=np.int64),
            np.asarray(rec["ts"], dtype=np.float64),
            np.asarray(rec["w"], dtype=np.float32),
        )

    jobs = [
        (src, rel, nodes[src].nid[start : start + batch].tolist())
        for src, rel, _ in model.EDGE_TYPES
        for start in range(0, len(nodes[src].nid), batch)
    ]
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(fetch, jobs))
    else:
        results = [fetch(job) for job in jobs]
    edges: EdgeArrays = {}
    for src, rel, dst in model.EDGE_TYPES:
        parts = [r for j, r in zip(jobs, results, strict=True) if j[:2] == (src, rel)]
        if not parts:
            continue
        s_idx, s_ok = nodes[src].index(np.concatenate([p[0] for p in parts]))
        t_idx, t_ok = nodes[dst].index(np.concatenate([p[1] for p in parts]))
        keep = s_ok & t_ok
        if not keep.any():
            continue
        edges[(src, rel, dst)] = {
            "edge_index": np.stack([s_idx[keep], t_idx[keep]]),
            "time": np.concatenate([p[2] for p in parts])[keep],
            "weight": np.concatenate([p[3] for p in parts])[keep],
        }
    return edges


def _export_whole(
    driver: Driver, sel: Selection, batch: int, database: str, workers: int, reader: str
) -> tuple[dict[str, NodeRows], UserColumns, EdgeArrays, str]:
    """The whole graph (optionally in a time window) and the node columns, read together on
    ``workers`` threads (each query in its own session).

    Relationships come from the project's procedure (one store pass for the user types, one
    for the rest) when ``reader`` allows and the server has it, else from one Cypher
    relationship-type scan per type. Returns the reader used with the parts."""
    if reader not in READERS:
        raise ValueError(f"reader must be one of {READERS}, got {reader!r}")
    use_procedure = reader == "procedure" or (
        reader == "auto" and has_procedure(driver, COLUMNS_PROCEDURE, database)
    )
    with ThreadPoolExecutor(max(workers, 1)) as pool:
        if use_procedure:
            bounds = (sel.since, sel.until) if sel.windowed else (None, None)
            # the user interactions (the largest part) split between the threads first, then
            # the nodes and the catalogue
            n = max(workers, 1)
            parts = [
                pool.submit(
                    relationship_columns, driver, USER_TYPES, *bounds, database, partition=(i, n)
                )
                for i in range(n)
            ]
            selected = pool.submit(_select_nodes, driver, sel, batch, database)
            other = pool.submit(relationship_columns, driver, OTHER_TYPES, None, None, database)
            nodes, user_cols = selected.result()
            columns = concat_columns([part.result() for part in parts])
            columns.update(other.result())
        else:
            bounds = (sel.since, sel.until)
            scans = {
                rel: pool.submit(type_columns, driver, rel, *bounds, database) for rel in USER_TYPES
            }
            selected = pool.submit(_select_nodes, driver, sel, batch, database)
            for rel in OTHER_TYPES:
                scans[rel] = pool.submit(type_columns, driver, rel, *bounds, database)
            nodes, user_cols = selected.result()
            columns = {rel: future.result() for rel, future in scans.items()}
    used = "procedure" if use_procedure else "cypher"
    return nodes, user_cols, map_types(nodes, columns), used


def export_subgraph(
    driver: Driver,
    out_dir: Path,
    *,
    database: str = "neo4j",
    users: Iterable[str] | None = None,
    hops: int = 1,
    segment: str | None = None,
    since: float | None = None,
    until: float | None = None,
    batch_size: int = EDGE_BATCH,
    workers: int = 2,
    reader: str = "auto",
) -> dict[str, Any]:
    """Export the graph, or the part :class:`Selection` describes, to ``out_dir``.

    Consenting users only. Every query returns columns, never one record per edge: the whole
    graph's relationships come from the project's procedure as packed arrays (``reader``
    ``auto`` when the server has it, or ``procedure``) or from one Cypher relationship-type
    scan per type (``cypher``); a k-hop or segment selection is read per batch of source
    nodes. Queries run on ``workers`` threads, and endpoints are mapped to row indices with
    numpy. Returns a summary with counts, the seconds taken and the selection
    (``filters``)."""
    started = time.perf_counter()
    sel = Selection(
        users=None if users is None else tuple(dict.fromkeys(str(u) for u in users)),
        hops=hops,
        segment=segment,
        since=since,
        until=until,
    )
    if sel.users is None and sel.segment is None:
        nodes, user_cols, edges, used = _export_whole(
            driver, sel, batch_size, database, workers, reader
        )
    else:
        nodes, user_cols = _select_nodes(driver, sel, batch_size, database)
        edges = _fetch_edges(driver, nodes, sel, batch_size, database, workers)
        used = "cypher"
    if sel.windowed:
        nodes, user_cols = keep_active_users(nodes, user_cols, edges)
    if not nodes[model.USER].ids or not nodes[model.ITEM].ids:
        raise GraphStoreError(
            f"nothing to export: no (consenting) users or items in the selection {sel.filters()}"
        )
    x, names = user_cols.features()
    parts: dict[str, dict[str, Any]] = {
        model.USER: {"ids": nodes[model.USER].ids, "x": x, "features": names}
    }
    for label in (model.ITEM, model.QUERY, model.TERM, model.CATEGORY):
        parts[label] = {"ids": nodes[label].ids}
    write_export(out_dir, parts, edges, sel.filters())
    n_edges = sum(int(p["edge_index"].shape[1]) for p in edges.values())
    elapsed = time.perf_counter() - started
    logger.info("exported %d edges to %s in %.1fs (%s reader)", n_edges, out_dir, elapsed, used)
    return {
        "dir": str(out_dir),
        "edges": n_edges,
        "seconds": elapsed,
        "nodes": {k: len(v.ids) for k, v in nodes.items()},
        "filters": sel.filters(),
        "reader": used,
    }


EdgeRow = tuple[str, str, float | None, float | None]


def _assemble(
    out_dir: Path,
    users: list[dict[str, Any]],
    ids: dict[str, list[str]],
    edge_rows: Callable[[str, str, str], Iterable[EdgeRow]],
    started: float,
) -> dict[str, Any]:
    """Index nodes, map edge rows (source id, target id, time, weight) and write the export.

    Rows whose endpoints are not exported (e.g. users without consent) are dropped."""
    x, names = user_features(users)
    nodes: dict[str, dict[str, Any]] = {
        model.USER: {"ids": [u["id"] for u in users], "x": x, "features": names}
    }
    for label, label_ids in ids.items():
        nodes[label] = {"ids": label_ids}
    index = {label: {nid: k for k, nid in enumerate(part["ids"])} for label, part in nodes.items()}
    edges: EdgeArrays = {}
    n_edges = 0
    for src, rel, dst in model.EDGE_TYPES:
        s_map, t_map = index[src], index[dst]
        pairs = [(s_map.get(s), t_map.get(t), ts, w) for s, t, ts, w in edge_rows(src, rel, dst)]
        pairs = [p for p in pairs if p[0] is not None and p[1] is not None]
        if not pairs:
            continue
        edges[(src, rel, dst)] = {
            "edge_index": np.array([[p[0] for p in pairs], [p[1] for p in pairs]]),
            "time": np.array([math.nan if p[2] is None else float(p[2]) for p in pairs]),
            "weight": np.array([1.0 if p[3] is None else float(p[3]) for p in pairs]),
        }
        n_edges += len(pairs)
    if not nodes[model.USER]["ids"] or not nodes[model.ITEM]["ids"]:
        raise GraphStoreError("nothing to export: the graph has no (consenting) users or items")
    write_export(out_dir, nodes, edges)
    elapsed = time.perf_counter() - started
    logger.info("exported %d edges to %s in %.1fs", n_edges, out_dir, elapsed)
    return {
        "dir": str(out_dir),
        "edges": n_edges,
        "seconds": elapsed,
        "nodes": {k: len(v["ids"]) for k, v in nodes.items()},
    }


def export_source(source: GraphSource, out_dir: Path) -> dict[str, Any]:
    """Export parsed rows straight to the training format, without Neo4j (offline evaluation
    of a dataset with the same files the pipeline trains on)."""
    started = time.perf_counter()
    users = [u for u in source.users if u.get("consent", True) is not False]
    ids = {
        model.ITEM: [r["id"] for r in source.items],
        model.QUERY: [r["id"] for r in source.queries],
        model.TERM: [r["id"] for r in source.terms],
        model.CATEGORY: [r["id"] for r in source.categories],
    }
    links: dict[tuple[str, str, str], Iterable[EdgeRow]] = {
        (model.QUERY, model.LED_TO, model.ITEM): (
            (r["query"], r["item"], None, r.get("count", 1)) for r in source.led_to
        ),
        (model.QUERY, model.HAS_TERM, model.TERM): (
            (r["query"], r["term"], None, 1.0) for r in source.query_terms
        ),
        (model.ITEM, model.HAS_TERM, model.TERM): (
            (r["item"], r["term"], None, 1.0) for r in source.item_terms
        ),
        (model.ITEM, model.IN_CATEGORY, model.CATEGORY): (
            (r["item"], r["category"], None, 1.0) for r in source.item_categories
        ),
        (model.CATEGORY, model.SUBCATEGORY_OF, model.CATEGORY): (
            (r["id"], r["parent"], None, 1.0) for r in source.categories if r.get("parent")
        ),
    }
    for rel, rows in source.interactions.items():
        dst = model.QUERY if rel == model.SEARCHED else model.ITEM
        links[(model.USER, rel, dst)] = (
            (r["user"], r["target"], r.get("ts"), r.get("weight", r.get("count"))) for r in rows
        )

    def edge_rows(src: str, rel: str, dst: str) -> Iterable[EdgeRow]:
        return links.get((src, rel, dst), ())

    return _assemble(out_dir, users, ids, edge_rows, started)


def export_query_task(test_file: Path, export_dir: Path) -> dict[str, int]:
    """``query_task.npz`` of an export: the searches of a labelled test file
    (:func:`graphstore.sources.searches.read_labelled_searches`, not in the graph) as rows of
    the export (-1 where unknown). Returns coverage counts."""
    from graphstore.sources.searches import read_labelled_searches

    rows = query_task_rows(export_dir, read_labelled_searches(test_file))
    write_query_task(export_dir, rows)
    return {
        "rows": len(rows),
        "known_user": int((rows.user >= 0).sum()),
        "known_query": int((rows.query >= 0).sum()),
        "known_item": int((rows.item >= 0).sum()),
    }
