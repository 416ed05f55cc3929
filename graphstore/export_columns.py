"""Relationship columns read from the store for an export, and their endpoints mapped to
export rows.

Every query returns columns (source id, target id, ts, weight), never one record per edge:
the project's procedure (``dpgcn.export.relationshipColumns``) reads a type list in one store
pass as packed arrays, or one Cypher relationship-type scan per type does. Endpoints (internal
node ids) become row indices through :class:`NodeRows`, with numpy.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from neo4j import Driver

from graphstore import model
from graphstore.driver import execute
from graphstore.export_features import UserColumns

Columns = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
EdgeArrays = dict[tuple[str, str, str], dict[str, np.ndarray]]

#: Endpoints are mapped to rows through a lookup table indexed by internal id when the
#: largest id is below ``LUT_SLACK`` x the node count + ``LUT_MIN`` (ids are dense in practice),
#: else by binary search.
LUT_SLACK = 8
LUT_MIN = 1 << 20

#: Relationship types, each scanned once by a whole-graph export: those leaving users, then
#: the rest (HAS_TERM leaves queries and items: one scan, split by the source's label).
USER_TYPES = tuple(dict.fromkeys(t for s, t, _ in model.EDGE_TYPES if s == model.USER))
OTHER_TYPES = tuple(dict.fromkeys(t for _, t, _ in model.EDGE_TYPES if t not in USER_TYPES))
_NO_EDGES: dict[str, list[Any]] = {"s": [], "t": [], "ts": [], "w": []}


class NodeRows:
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


def type_columns(
    driver: Driver,
    rel: str,
    since: float | None = None,
    until: float | None = None,
    database: str = "neo4j",
) -> Columns:
    """Every relationship of type ``rel`` as columns, by a relationship-type scan.

    The plain statement reads ts and weight without ``coalesce`` (one property read each);
    only when a column comes back short (some relationships lack the property) is the
    statement with defaults run instead. ``since`` / ``until`` bound ``ts`` of the user
    interaction types only (the catalogue's relationships have no time)."""
    windowed = rel in USER_TYPES
    params: dict[str, Any] = {
        "since": since if windowed else None,
        "until": until if windowed else None,
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


def map_types(nodes: dict[str, NodeRows], columns: dict[str, Columns]) -> EdgeArrays:
    """Split each type's columns into the model's edge types by endpoint label (e.g.
    HAS_TERM from queries and from items), dropping endpoints that are not exported."""
    edges: EdgeArrays = {}
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


def concat_columns(parts: list[dict[str, Columns]]) -> dict[str, Columns]:
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


def keep_active_users(
    nodes: dict[str, NodeRows],
    user_cols: UserColumns,
    edges: EdgeArrays,
) -> tuple[dict[str, NodeRows], UserColumns]:
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
    nodes[model.USER] = NodeRows(users.nid[keep], [users.ids[k] for k in keep.tolist()])
    return nodes, user_cols.take(keep)
