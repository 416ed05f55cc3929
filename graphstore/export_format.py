"""The export contract: the files that cross from the graph store to training
(``docs/export-format.md``), written and read here and nowhere else.

Both sides import this module: :mod:`graphstore.export` writes exports with
:func:`write_export`, ``dpgcn evaluate`` adds the oracle (:func:`write_oracle`) and the
query-conditioned task (:func:`write_query_task`), and ``training`` reads all three
(:func:`read_export`, :func:`read_oracle`, :func:`read_query_task`). It imports numpy and the
graph's vocabulary (:mod:`graphstore.model`) only: never the Neo4j driver (training must not
load it) and never torch (the graph store must not); a unit test asserts both.

Files of an export directory:

* ``meta.json``: ``format`` (:data:`FORMAT_VERSION`), ``created_at``, ``node_types``
  (``{label: {count, features}}``), ``edge_types`` and ``filters`` (the selection);
* ``graph.npz``: ``<Label>.ids``, ``<Label>.x`` and, per edge type, ``<Src>__<TYPE>__<Dst>``
  ``.edge_index`` [2, E] (int64 rows), ``.time`` [E] (float64 epoch seconds, NaN unknown) and
  ``.weight`` [E] (float32);
* ``oracle.npz`` (synthetic data only): ``User.ids``, ``User.vector``, ``Item.ids``,
  ``Item.vector``, the planted preference model as a dot product;
* ``query_task.npz`` (labelled search logs only): ``test.user``, ``test.query``,
  ``test.term_indptr``, ``test.term_index``, ``test.item`` (export rows, -1 unknown) and
  ``test.time``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from graphstore import model
from graphstore.errors import ExportFileError

__all__ = [
    "CATEGORY",
    "EDGE_TYPES",
    "FORMAT_VERSION",
    "GRAPH_FILE",
    "HAS_TERM",
    "IN_CATEGORY",
    "ITEM",
    "LED_TO",
    "META_FILE",
    "NODE_TYPES",
    "ORACLE_FILE",
    "QUERY",
    "QUERY_TASK_FILE",
    "SEARCHED",
    "TERM",
    "USER",
    "EdgeType",
    "ExportFileError",
    "ExportFiles",
    "QueryTaskRows",
    "edge_name",
    "edge_type",
    "query_task_rows",
    "read_export",
    "read_ids",
    "read_oracle",
    "read_query_task",
    "write_export",
    "write_oracle",
    "write_query_task",
]

#: Version of the layout below; a reader refuses any other.
FORMAT_VERSION = 1
META_FILE = "meta.json"
GRAPH_FILE = "graph.npz"
ORACLE_FILE = "oracle.npz"
QUERY_TASK_FILE = "query_task.npz"

EdgeType = tuple[str, str, str]
#: The labels and relationship types of an export, as the graph names them
#: (:mod:`graphstore.model`), typed ``str`` for the readers.
USER: str = model.USER
ITEM: str = model.ITEM
QUERY: str = model.QUERY
TERM: str = model.TERM
CATEGORY: str = model.CATEGORY
SEARCHED: str = model.SEARCHED
LED_TO: str = model.LED_TO
HAS_TERM: str = model.HAS_TERM
IN_CATEGORY: str = model.IN_CATEGORY
#: The node labels and (source, type, target) edge types an export may hold.
NODE_TYPES: tuple[str, ...] = tuple(model.NODE_LABELS)
EDGE_TYPES: tuple[EdgeType, ...] = tuple(model.EDGE_TYPES)

_EDGE_ARRAY = re.compile(r"^([A-Za-z]+)__([A-Z_]+)__([A-Za-z]+)\.(edge_index|time|weight)$")
_ORACLE_KEYS = ("User.ids", "User.vector", "Item.ids", "Item.vector")
_QUERY_TASK_ROWS = ("test.user", "test.query", "test.term_indptr", "test.term_index", "test.item")


def edge_name(et: EdgeType) -> str:
    """``(User, CLICKED, Item)`` → ``User__CLICKED__Item``, the prefix of its arrays."""
    return "__".join(et)


def edge_type(name: str) -> EdgeType:
    """The inverse of :func:`edge_name`."""
    parts = name.split("__")
    if len(parts) != 3:
        raise ExportFileError(f"bad edge name {name!r}; expected <Src>__<TYPE>__<Dst>")
    return parts[0], parts[1], parts[2]


def write_export(
    out_dir: Path,
    nodes: Mapping[str, Mapping[str, Any]],
    edges: Mapping[EdgeType, Mapping[str, np.ndarray]],
    filters: dict[str, Any] | None = None,
) -> Path:
    """Write an export atomically: a temp dir renamed into place, so no reader sees half a
    file.

    ``nodes[label]`` holds ``ids`` (list/array of str) and optionally ``x`` and ``features``;
    ``edges[(src, type, dst)]`` holds ``edge_index`` [2, E], ``time`` [E], ``weight`` [E].
    """
    out_dir = Path(out_dir)
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
    for et, part in edges.items():
        key = edge_name(et)
        arrays[f"{key}.edge_index"] = np.asarray(part["edge_index"], dtype=np.int64)
        arrays[f"{key}.time"] = np.asarray(part["time"], dtype=np.float64)
        arrays[f"{key}.weight"] = np.asarray(part["weight"], dtype=np.float32)
    np.savez(tmp / GRAPH_FILE, **arrays)  # type: ignore[arg-type]
    meta = {
        "format": FORMAT_VERSION,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "node_types": meta_nodes,
        "edge_types": [list(k) for k in edges],
        "filters": filters or {"scope": "all"},
    }
    (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return out_dir


@dataclass
class ExportFiles:
    """An export as read from disk: ``meta.json`` and the arrays of ``graph.npz`` by key,
    with the edge types their keys name."""

    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]

    @property
    def node_meta(self) -> dict[str, Any]:
        return dict(self.meta.get("node_types", {}) or {})

    @property
    def edge_types(self) -> list[EdgeType]:
        names = {m.group(0).rsplit(".", 1)[0] for k in self.arrays if (m := _EDGE_ARRAY.match(k))}
        return [edge_type(name) for name in sorted(names)]

    @property
    def labels(self) -> list[str]:
        """Every label the meta or an ``<Label>.ids`` / ``.x`` array names, sorted."""
        return sorted(set(self.node_meta) | {k.split(".")[0] for k in self.arrays if "__" not in k})


def read_export(export_dir: Path) -> ExportFiles:
    """Read an export directory's ``meta.json`` and ``graph.npz``; a missing file, bad JSON,
    another format version or an unreadable archive is an :class:`ExportFileError`."""
    export_dir = Path(export_dir)
    meta_path, npz_path = export_dir / META_FILE, export_dir / GRAPH_FILE
    if not meta_path.is_file() or not npz_path.is_file():
        raise ExportFileError(f"{export_dir} lacks {META_FILE} or {GRAPH_FILE}")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as e:
        raise ExportFileError(f"{meta_path} is not valid JSON: {e}") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise ExportFileError(f"unsupported export format {found!r} in {meta_path}")
    return ExportFiles(meta, _read_npz(npz_path))


def read_ids(export_dir: Path, labels: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """Per label, external id → row of an export's ``graph.npz`` (empty for absent labels)."""
    path = Path(export_dir) / GRAPH_FILE
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {
                label: {str(k): n for n, k in enumerate(npz[f"{label}.ids"].tolist())}
                if f"{label}.ids" in npz.files
                else {}
                for label in labels
            }
    except (OSError, ValueError) as e:
        raise ExportFileError(f"cannot read {path}: {e}") from e


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError) as e:
        raise ExportFileError(f"cannot read {path}: {e}") from e


def write_oracle(
    export_dir: Path,
    user_ids: Any,
    user_vectors: np.ndarray,
    item_ids: Any,
    item_vectors: np.ndarray,
) -> Path:
    """``oracle.npz``: a preference model as a dot product of user and item vectors."""
    path = Path(export_dir) / ORACLE_FILE
    arrays = {
        "User.ids": np.asarray(user_ids, dtype=str),
        "User.vector": np.asarray(user_vectors, dtype=np.float32),
        "Item.ids": np.asarray(item_ids, dtype=str),
        "Item.vector": np.asarray(item_vectors, dtype=np.float32),
    }
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


def read_oracle(export_dir: Path) -> dict[str, np.ndarray] | None:
    """The arrays of ``oracle.npz`` (``None`` when the export has none); every key needed."""
    path = Path(export_dir) / ORACLE_FILE
    if not path.is_file():
        return None
    arrays = _read_npz(path)
    absent = [k for k in _ORACLE_KEYS if k not in arrays]
    if absent:
        raise ExportFileError(f"{path} lacks {', '.join(absent)}")
    return arrays


@dataclass
class QueryTaskRows:
    """The rows of a query-conditioned test: who searched what (query row, its term rows as
    CSR), which item they clicked and when; -1 for an id the export does not hold."""

    user: np.ndarray
    query: np.ndarray
    term_indptr: np.ndarray
    term_index: np.ndarray
    item: np.ndarray
    #: Epoch seconds of each search (NaN unknown); ``None`` when the file has no times.
    time: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.user)


def query_task_rows(
    export_dir: Path, searches: Iterable[tuple[str, str, str, float]]
) -> QueryTaskRows:
    """Searches ``(user id, query id, item id, epoch seconds)`` as rows of the export in
    ``export_dir``: -1 where the export does not hold the id; a query id is its terms joined
    by spaces (as the loaders normalise it), so its term rows are the terms the export holds."""
    rows_of = read_ids(export_dir, (USER, ITEM, QUERY, TERM))
    users: list[int] = []
    queries: list[int] = []
    items: list[int] = []
    indptr: list[int] = [0]
    terms: list[int] = []
    times: list[float] = []
    for user, query, item, ts in searches:
        users.append(rows_of[USER].get(user, -1))
        queries.append(rows_of[QUERY].get(query, -1) if query else -1)
        items.append(rows_of[ITEM].get(item, -1))
        terms.extend(rows_of[TERM][t] for t in query.split() if t in rows_of[TERM])
        indptr.append(len(terms))
        times.append(ts)
    return QueryTaskRows(
        user=np.asarray(users, dtype=np.int64),
        query=np.asarray(queries, dtype=np.int64),
        term_indptr=np.asarray(indptr, dtype=np.int64),
        term_index=np.asarray(terms, dtype=np.int64),
        item=np.asarray(items, dtype=np.int64),
        time=np.asarray(times, dtype=np.float64),
    )


def write_query_task(export_dir: Path, rows: QueryTaskRows) -> Path:
    """``query_task.npz`` of an export."""
    path = Path(export_dir) / QUERY_TASK_FILE
    arrays = {
        key: np.asarray(getattr(rows, key.removeprefix("test.")), dtype=np.int64)
        for key in _QUERY_TASK_ROWS
    }
    if rows.time is not None:
        arrays["test.time"] = np.asarray(rows.time, dtype=np.float64)
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


def read_query_task(export_dir: Path) -> QueryTaskRows | None:
    """The rows of ``query_task.npz`` (``None`` when there is none; ``time`` is ``None`` in a
    file without ``test.time``). Checks keys and lengths only: the reader checks the rows
    against the export it has loaded."""
    path = Path(export_dir) / QUERY_TASK_FILE
    if not path.is_file():
        return None
    raw = _read_npz(path)
    absent = [k for k in _QUERY_TASK_ROWS if k not in raw]
    if absent:
        raise ExportFileError(f"{path} needs the keys {', '.join(_QUERY_TASK_ROWS)}")
    a = {k: np.asarray(raw[k], dtype=np.int64) for k in _QUERY_TASK_ROWS}
    n = len(a["test.user"])
    times = np.asarray(raw["test.time"], dtype=np.float64) if "test.time" in raw else None
    if (
        any(len(a[k]) != n for k in ("test.query", "test.item"))
        or len(a["test.term_indptr"]) != n + 1
        or a["test.term_indptr"][-1] != len(a["test.term_index"])
        or (times is not None and times.shape != (n,))
    ):
        raise ExportFileError(f"{path}: the row arrays do not have matching lengths")
    return QueryTaskRows(
        a["test.user"],
        a["test.query"],
        a["test.term_indptr"],
        a["test.term_index"],
        a["test.item"],
        times,
    )
