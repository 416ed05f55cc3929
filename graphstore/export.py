"""Export the graph (or a part) to the file format ``training`` reads (docs/export-format.md)."""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
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
from graphstore.records import GraphSource

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
AGE_SCALE = 100.0


def user_features(rows: list[dict[str, Any]]) -> tuple[np.ndarray, list[str]]:
    """Static user features: scaled age (+ known flag), one-hot gender and occupation."""
    gender = [r.get("gender") for r in rows]
    occupation = [r.get("occupation") for r in rows]
    return _feature_matrix(
        np.array([np.nan if r.get("age") is None else float(r["age"]) for r in rows]),
        np.array(["" if g is None else str(g) for g in gender], dtype=str),
        np.array([g is not None for g in gender], dtype=bool),
        np.array(["" if o is None else str(o) for o in occupation], dtype=str),
        np.array([o is not None for o in occupation], dtype=bool),
    )


def _feature_matrix(
    age: np.ndarray,
    gender: np.ndarray,
    gender_known: np.ndarray,
    occupation: np.ndarray,
    occupation_known: np.ndarray,
) -> tuple[np.ndarray, list[str]]:
    """The feature matrix of :func:`user_features` from columns (age NaN when unknown),
    built with numpy: categories in sorted order, one column each."""
    genders, g_col = np.unique(gender[gender_known], return_inverse=True)
    occupations, o_col = np.unique(occupation[occupation_known], return_inverse=True)
    names = (
        ["age", "age_known"]
        + [f"gender={g}" for g in genders.tolist()]
        + [f"occ={o}" for o in occupations.tolist()]
    )
    x = np.zeros((len(age), len(names)), dtype=np.float32)
    known = ~np.isnan(age)
    x[known, 0] = age[known] / AGE_SCALE
    x[known, 1] = 1.0
    x[np.flatnonzero(gender_known), 2 + g_col] = 1.0
    x[np.flatnonzero(occupation_known), 2 + len(genders) + o_col] = 1.0
    return x, names


@dataclass(frozen=True)
class _UserColumns:
    """Exported users' static features as columns, as the export statements return them:
    age NaN when unknown, gender and occupation ``''`` when unknown."""

    age: np.ndarray
    gender: np.ndarray
    occupation: np.ndarray

    @classmethod
    def of(cls, record: Any) -> _UserColumns:
        age = np.asarray(record.get("age", []), dtype=np.float64)
        age[age < 0] = np.nan  # the statements' sentinel for a missing age
        return cls(
            age,
            np.asarray(record.get("gender", []), dtype=str),
            np.asarray(record.get("occupation", []), dtype=str),
        )

    def concat(self, other: _UserColumns) -> _UserColumns:
        return _UserColumns(
            np.concatenate([self.age, other.age]),
            np.concatenate([self.gender, other.gender]),
            np.concatenate([self.occupation, other.occupation]),
        )

    def take(self, rows: np.ndarray) -> _UserColumns:
        return _UserColumns(self.age[rows], self.gender[rows], self.occupation[rows])

    def features(self) -> tuple[np.ndarray, list[str]]:
        return _feature_matrix(
            self.age, self.gender, self.gender != "", self.occupation, self.occupation != ""
        )


def write_export(
    out_dir: Path,
    nodes: dict[str, dict[str, Any]],
    edges: dict[tuple[str, str, str], dict[str, np.ndarray]],
    filters: dict[str, Any] | None = None,
) -> Path:
    """Write arrays atomically: a temp dir renamed into place, so no reader sees half a file.

    ``nodes[label]`` holds ``ids`` (list/array of str) and optionally ``x`` and ``features``;
    ``edges[(src, type, dst)]`` holds ``edge_index`` [2, E], ``time`` [E], ``weight`` [E].
    """
    tmp = out_dir.with_name(out_dir.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    arrays: dict[str, np.ndarray] = {}
    meta_nodes: dict[str, Any] = {}
    for label, part in nodes.items():
        ids = np.asarray(part["ids"], dtype=str)
        arrays[f"{label}.ids"] = ids
        if part.get("x") is not None:
            arrays[f"{label}.x"] = np.asarray(part["x"], dtype=np.float32)
        meta_nodes[label] = {"count": len(ids), "features": list(part.get("features", []))}
    for (src, rel, dst), part in edges.items():
        key = f"{src}__{rel}__{dst}"
        arrays[f"{key}.edge_index"] = np.asarray(part["edge_index"], dtype=np.int64)
        arrays[f"{key}.time"] = np.asarray(part["time"], dtype=np.float64)
        arrays[f"{key}.weight"] = np.asarray(part["weight"], dtype=np.float32)
    np.savez(tmp / "graph.npz", **arrays)  # type: ignore[arg-type]
    meta = {
        "format": FORMAT_VERSION,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "node_types": meta_nodes,
        "edge_types": [list(k) for k in edges],
        "filters": filters or {"scope": "all"},
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return out_dir


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
    edges: dict[tuple[str, str, str], dict[str, np.ndarray]] = {}
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


#: Source nodes per edge query: one record of columns per batch, never one per edge.
EDGE_BATCH = 20_000
#: Endpoints are mapped to rows through a lookup table indexed by internal id when the
#: largest id is below ``LUT_SLACK`` x the node count + ``LUT_MIN`` (ids are dense in practice),
#: else by binary search.
LUT_SLACK = 8
LUT_MIN = 1 << 20


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


class _Nodes:
    """One label's exported nodes: internal ids (to map edge endpoints) and external ids."""

    def __init__(self, nid: np.ndarray, ids: list[str]) -> None:
        self.nid = np.asarray(nid, dtype=np.int64)
        self.ids = ids
        self._lut: np.ndarray | None = None
        self._order: np.ndarray | None = None
        self._sorted: np.ndarray | None = None
        if len(self.nid) == 0:
            return
        top = int(self.nid.max())
        if int(self.nid.min()) >= 0 and top < LUT_SLACK * len(self.nid) + LUT_MIN:
            # internal ids are dense: a lookup table maps an endpoint in one gather
            self._lut = np.full(top + 1, -1, dtype=np.int64)
            self._lut[self.nid] = np.arange(len(self.nid), dtype=np.int64)
        else:
            self._order = np.argsort(self.nid, kind="stable")
            self._sorted = self.nid[self._order]

    def index(self, nid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row indices of internal ids, and a mask of those that are exported."""
        if len(self.nid) == 0:
            return np.zeros(len(nid), dtype=np.int64), np.zeros(len(nid), dtype=bool)
        if self._lut is not None:
            inside = (nid >= 0) & (nid < len(self._lut))
            rows = self._lut[np.where(inside, nid, 0)]
            found = inside & (rows >= 0)
            return np.where(found, rows, 0), found
        assert self._sorted is not None and self._order is not None
        pos = np.searchsorted(self._sorted, nid)
        pos = np.minimum(pos, len(self._sorted) - 1)
        found = self._sorted[pos] == nid
        return self._order[pos], found


_NO_NODES: dict[str, list[Any]] = {"nid": [], "id": []}
_NO_EDGES: dict[str, list[Any]] = {"s": [], "t": [], "ts": [], "w": []}
#: Relationship types, each scanned once by a whole-graph export: those leaving users, then
#: the rest (HAS_TERM leaves queries and items: one scan, split by the source's label).
_USER_TYPES = tuple(dict.fromkeys(t for s, t, _ in model.EDGE_TYPES if s == model.USER))
_OTHER_TYPES = tuple(dict.fromkeys(t for _, t, _ in model.EDGE_TYPES if t not in _USER_TYPES))
_NO_USERS: dict[str, list[Any]] = {"nid": [], "id": [], "age": [], "gender": [], "occupation": []}


def _one(records: list[Any]) -> Any:
    """The single record of a ``collect()`` query (always one, but be safe)."""
    return records[0] if records else _NO_NODES


def _user_part(record: Any) -> tuple[_Nodes, _UserColumns]:
    return _Nodes(np.asarray(record["nid"], dtype=np.int64), list(record["id"])), _UserColumns.of(
        record
    )


def _fetch_users(driver: Driver, sel: Selection, database: str) -> tuple[_Nodes, _UserColumns]:
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
) -> tuple[dict[str, _Nodes], _UserColumns]:
    users, user_cols = _fetch_users(driver, sel, database)
    nodes: dict[str, _Nodes] = {model.USER: users}
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
            nodes[model.USER] = _Nodes(
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
            nodes[label] = _Nodes(np.asarray(rec["nid"], dtype=np.int64), list(rec["id"]))
    else:
        for label in (model.ITEM, model.QUERY, model.TERM, model.CATEGORY):
            rec = _one(
                execute(
                    driver, "export/get_node_columns", database=database, read=True, label=label
                )
            )
            nodes[label] = _Nodes(np.asarray(rec["nid"], dtype=np.int64), list(rec["id"]))
    return nodes, user_cols


Columns = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _fetch_edges(
    driver: Driver,
    nodes: dict[str, _Nodes],
    sel: Selection,
    batch: int,
    database: str,
    workers: int = 1,
) -> dict[tuple[str, str, str], dict[str, np.ndarray]]:
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
    edges: dict[tuple[str, str, str], dict[str, np.ndarray]] = {}
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


def _type_columns(driver: Driver, rel: str, sel: Selection, database: str) -> Columns:
    """Every relationship of type ``rel`` as columns, by a relationship-type scan.

    The plain statement reads ts and weight without ``coalesce`` (one property read each);
    only when a column comes back short (some relationships lack the property) is the
    statement with defaults run instead."""
    windowed = sel.windowed and rel in _USER_TYPES
    params: dict[str, Any] = {
        "since": sel.since if windowed else None,
        "until": sel.until if windowed else None,
    }
    records = execute(
        driver, "export/get_type_columns", params, database=database, read=True, type=rel
    )
    rec = records[0] if records else _NO_EDGES
    s = np.asarray(rec["s"], dtype=np.int64)
    n = len(s)
    if len(rec["w"]) == n and len(rec["ts"]) in (0, n):
        ts = (
            np.asarray(rec["ts"], dtype=np.float64)
            if len(rec["ts"]) == n
            else np.full(n, math.nan, dtype=np.float64)
        )
        return s, np.asarray(rec["t"], dtype=np.int64), ts, np.asarray(rec["w"], dtype=np.float32)
    records = execute(
        driver,
        "export/get_type_columns_coalesced",
        {**params, "missing": math.nan},
        database=database,
        read=True,
        type=rel,
    )
    rec = records[0] if records else _NO_EDGES
    return (
        np.asarray(rec["s"], dtype=np.int64),
        np.asarray(rec["t"], dtype=np.int64),
        np.asarray(rec["ts"], dtype=np.float64),
        np.asarray(rec["w"], dtype=np.float32),
    )


def _map_types(
    nodes: dict[str, _Nodes], columns: dict[str, Columns]
) -> dict[tuple[str, str, str], dict[str, np.ndarray]]:
    """Split each type's columns into the model's edge types by endpoint label (e.g.
    HAS_TERM from queries and from items), dropping endpoints that are not exported."""
    edges: dict[tuple[str, str, str], dict[str, np.ndarray]] = {}
    for src, rel, dst in model.EDGE_TYPES:
        s, t, ts, w = columns[rel]
        s_idx, s_ok = nodes[src].index(s)
        t_idx, t_ok = nodes[dst].index(t)
        keep = s_ok & t_ok
        if not keep.any():
            continue
        if keep.all():
            edges[(src, rel, dst)] = {
                "edge_index": np.stack([s_idx, t_idx]),
                "time": ts,
                "weight": w,
            }
        else:
            edges[(src, rel, dst)] = {
                "edge_index": np.stack([s_idx[keep], t_idx[keep]]),
                "time": ts[keep],
                "weight": w[keep],
            }
    return edges


#: The project's procedure that reads relationship columns in one store pass (optional).
COLUMNS_PROCEDURE = "dpgcn.export.relationshipColumns"
#: Edges per record from the procedure (28 bytes each: 28 MiB at most per record).
PROCEDURE_CHUNK = 1 << 20
#: How the whole-graph export reads relationships: the procedure when the server has it,
#: else Cypher (``auto``), or one of them by name.
READERS = ("auto", "procedure", "cypher")


def relationship_columns(
    driver: Driver,
    rels: tuple[str, ...],
    since: float | None = None,
    until: float | None = None,
    database: str = "neo4j",
    chunk: int = PROCEDURE_CHUNK,
    partition: tuple[int, int] = (0, 1),
) -> dict[str, Columns]:
    """Every relationship of the types ``rels`` (source id, target id, ts, weight columns;
    ``ts`` in [since, until) when a bound is given), read by the project's procedure in one
    store pass and decoded from its packed chunks with ``np.frombuffer``. ``partition``
    ``(i, n)``: only the relationships whose internal id modulo n is i (n concurrent calls
    share the server's work)."""
    records = execute(
        driver,
        "export/get_relationship_columns",
        {
            "types": list(rels),
            "since": since,
            "until": until,
            "chunk": chunk,
            "partition": partition[0],
            "partitions": partition[1],
        },
        database=database,
        read=True,
    )
    chunks: dict[str, list[Any]] = {rel: [] for rel in rels}
    for rec in records:
        chunks[rec["type"]].append(rec)
    out: dict[str, Columns] = {}
    for rel, parts in chunks.items():
        out[rel] = (
            _from_bytes([r["source"] for r in parts], "<i8", np.int64),
            _from_bytes([r["target"] for r in parts], "<i8", np.int64),
            _from_bytes([r["ts"] for r in parts], "<f8", np.float64),
            _from_bytes([r["weight"] for r in parts], "<f4", np.float32),
        )
    return out


def _concat_columns(parts: list[dict[str, Columns]]) -> dict[str, Columns]:
    """Per type, the columns of each partition one after the other."""
    if len(parts) == 1:
        return dict(parts[0])
    out: dict[str, Columns] = {}
    for rel in parts[0]:
        s, t, ts, w = (np.concatenate([part[rel][k] for part in parts]) for k in range(4))
        out[rel] = (s, t, ts, w)
    return out


def _from_bytes(parts: list[bytes], wire: str, dtype: type) -> np.ndarray:
    if not parts:
        return np.zeros(0, dtype=dtype)
    arrays = [np.frombuffer(part, dtype=wire) for part in parts]
    return (arrays[0] if len(arrays) == 1 else np.concatenate(arrays)).astype(dtype, copy=False)


def _export_whole(
    driver: Driver, sel: Selection, batch: int, database: str, workers: int, reader: str
) -> tuple[dict[str, _Nodes], _UserColumns, dict[tuple[str, str, str], dict[str, np.ndarray]], str]:
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
                    relationship_columns, driver, _USER_TYPES, *bounds, database, partition=(i, n)
                )
                for i in range(n)
            ]
            selected = pool.submit(_select_nodes, driver, sel, batch, database)
            other = pool.submit(relationship_columns, driver, _OTHER_TYPES, None, None, database)
            nodes, user_cols = selected.result()
            columns = _concat_columns([part.result() for part in parts])
            columns.update(other.result())
        else:
            scans = {
                rel: pool.submit(_type_columns, driver, rel, sel, database) for rel in _USER_TYPES
            }
            selected = pool.submit(_select_nodes, driver, sel, batch, database)
            for rel in _OTHER_TYPES:
                scans[rel] = pool.submit(_type_columns, driver, rel, sel, database)
            nodes, user_cols = selected.result()
            columns = {rel: future.result() for rel, future in scans.items()}
    used = "procedure" if use_procedure else "cypher"
    return nodes, user_cols, _map_types(nodes, columns), used


def _keep_active_users(
    nodes: dict[str, _Nodes],
    user_cols: _UserColumns,
    edges: dict[tuple[str, str, str], dict[str, np.ndarray]],
) -> tuple[dict[str, _Nodes], _UserColumns]:
    """Drop users with no relationship left (time-window exports) and renumber edges."""
    users = nodes[model.USER]
    active = np.zeros(len(users.ids), dtype=bool)
    for (src, _, _), part in edges.items():
        if src == model.USER:
            active[part["edge_index"][0]] = True
    new_index = np.cumsum(active) - 1
    for (src, _, _), part in edges.items():
        if src == model.USER:
            part["edge_index"][0] = new_index[part["edge_index"][0]]
    keep = np.flatnonzero(active)
    nodes = dict(nodes)
    nodes[model.USER] = _Nodes(users.nid[keep], [users.ids[k] for k in keep.tolist()])
    return nodes, user_cols.take(keep)


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
        nodes, user_cols = _keep_active_users(nodes, user_cols, edges)
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
