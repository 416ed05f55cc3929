"""Reading an export directory (``docs/export-format.md``) and splitting its interactions.

Pure numpy: no torch here. :func:`load_export` validates and loads ``meta.json`` +
``graph.npz`` into an :class:`ExportGraph`; :func:`split_interactions` builds the
leave-one-out protocol (per user, by time: last interaction → test, the one before →
validation, the rest → training) and the training graph that message passing may see (val/test
interaction and search edges removed, so nothing leaks from the evaluation items).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from graphstore.export_format import (
    CATEGORY,
    HAS_TERM,
    IN_CATEGORY,
    ITEM,
    LED_TO,
    NODE_TYPES,
    QUERY,
    SEARCHED,
    TERM,
    USER,
    EdgeType,
    ExportFileError,
    edge_name,
    read_export,
)
from training.errors import ExportFormatError

logger = logging.getLogger(__name__)

#: The labels and relationship types come from the export contract (graphstore.export_format).
__all__ = [
    "CATEGORY",
    "HAS_TERM",
    "IN_CATEGORY",
    "ITEM",
    "LED_TO",
    "NODE_TYPES",
    "QUERY",
    "SEARCHED",
    "TERM",
    "USER",
    "EdgeSet",
    "EdgeType",
    "ExportGraph",
    "FloatArray",
    "IntArray",
    "Pairs",
    "in_sorted",
    "interaction_edge_types",
    "load_export",
    "read_contract",
    "sample_negatives",
    "user_item_pairs",
    "user_query_pairs",
]

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float32]
T = TypeVar("T")


@dataclass
class EdgeSet:
    """One typed edge list: ``index [2, E]`` (source row, target row), ``time``, ``weight``."""

    index: IntArray
    time: NDArray[np.float64]
    weight: FloatArray

    @property
    def num_edges(self) -> int:
        return int(self.index.shape[1])

    def subset(self, mask: NDArray[np.bool_]) -> EdgeSet:
        return EdgeSet(self.index[:, mask], self.time[mask], self.weight[mask])


@dataclass
class ExportGraph:
    """An export loaded into memory: id maps, static features and typed edges."""

    meta: dict[str, object]
    ids: dict[str, NDArray[np.str_]]
    x: dict[str, FloatArray]
    edges: dict[EdgeType, EdgeSet]
    feature_names: dict[str, list[str]] = field(default_factory=dict)

    def num_nodes(self, node_type: str) -> int:
        ids = self.ids.get(node_type)
        return 0 if ids is None else len(ids)

    @property
    def node_types(self) -> list[str]:
        return [t for t in self.ids if self.num_nodes(t) > 0]


def read_contract(read: Callable[[Path], T], export_dir: Path) -> T:
    """``read(export_dir)``, a reader of the export contract (:mod:`graphstore.export_format`),
    with its errors as training's :class:`ExportFormatError`."""
    try:
        return read(Path(export_dir))
    except ExportFileError as e:
        raise ExportFormatError(str(e)) from e


def load_export(export_dir: Path) -> ExportGraph:
    """Load and validate an export directory (read through the contract,
    :func:`graphstore.export_format.read_export`). Any node or edge type may be absent."""
    export_dir = Path(export_dir)
    files = read_contract(read_export, export_dir)
    meta, arrays, node_meta = files.meta, files.arrays, files.node_meta
    ids: dict[str, NDArray[np.str_]] = {}
    xs: dict[str, FloatArray] = {}
    feature_names: dict[str, list[str]] = {}
    for label in files.labels:
        if f"{label}.ids" in arrays:
            ids[label] = arrays[f"{label}.ids"].astype(str)
        else:
            count = int(node_meta.get(label, {}).get("count", 0))
            ids[label] = np.array([f"{label}:{i}" for i in range(count)], dtype=str)
        if f"{label}.x" in arrays:
            x = np.asarray(arrays[f"{label}.x"], dtype=np.float32)
            if x.ndim != 2 or x.shape[0] != len(ids[label]):
                raise ExportFormatError(f"{label}.x has shape {x.shape}, expected [N, F]")
            xs[label] = np.nan_to_num(x)
        feature_names[label] = list(node_meta.get(label, {}).get("features", []) or [])

    edges: dict[EdgeType, EdgeSet] = {}
    for et in files.edge_types:
        name = edge_name(et)
        if f"{name}.edge_index" not in arrays:
            raise ExportFormatError(f"{name} has no edge_index")
        index = np.asarray(arrays[f"{name}.edge_index"], dtype=np.int64)
        if index.ndim != 2 or index.shape[0] != 2:
            raise ExportFormatError(f"{name}.edge_index has shape {index.shape}, expected [2, E]")
        n_edges = index.shape[1]
        for end, label in ((0, et[0]), (1, et[2])):
            n = len(ids.get(label, ()))
            if n_edges and (index[end].min() < 0 or index[end].max() >= n):
                raise ExportFormatError(f"{name} refers to {label} rows outside [0, {n})")
        time = np.asarray(arrays.get(f"{name}.time", np.full(n_edges, np.nan)), np.float64)
        weight = np.asarray(arrays.get(f"{name}.weight", np.ones(n_edges)), np.float32)
        if time.shape != (n_edges,) or weight.shape != (n_edges,):
            raise ExportFormatError(f"{name}.time / .weight do not have length {n_edges}")
        edges[et] = EdgeSet(index, time, np.nan_to_num(weight, nan=1.0))
    graph = ExportGraph(meta=meta, ids=ids, x=xs, edges=edges, feature_names=feature_names)
    logger.info(
        "loaded export %s: %s; %d edge types, %d edges",
        export_dir,
        ", ".join(f"{t}={graph.num_nodes(t)}" for t in graph.node_types),
        len(edges),
        sum(e.num_edges for e in edges.values()),
    )
    return graph


@dataclass
class Pairs:
    """Unique (row, col) pairs with the time of their first event and their reward."""

    row: IntArray
    col: IntArray
    time: NDArray[np.float64]
    reward: FloatArray

    def __len__(self) -> int:
        return len(self.row)

    def subset(self, mask: NDArray[np.bool_] | IntArray) -> Pairs:
        return Pairs(self.row[mask], self.col[mask], self.time[mask], self.reward[mask])

    @staticmethod
    def empty() -> Pairs:
        return Pairs(
            np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.float32)
        )


def interaction_edge_types(graph: ExportGraph) -> list[EdgeType]:
    """Every User → Item relationship type present (CLICKED, PURCHASED, VIEWED, RATED, …)."""
    return [et for et in graph.edges if et[0] == USER and et[2] == ITEM]


def _unique_pairs(
    rows: IntArray, cols: IntArray, times: NDArray[np.float64], rewards: FloatArray, n_cols: int
) -> Pairs:
    """Collapse repeated (row, col) events: first time, strongest reward."""
    if len(rows) == 0:
        return Pairs.empty()
    key = rows * max(n_cols, 1) + cols
    t_sort = np.where(np.isnan(times), np.inf, times)
    order = np.lexsort((t_sort, key))
    key, rows, cols, times, rewards = (
        key[order],
        rows[order],
        cols[order],
        times[order],
        rewards[order],
    )
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    starts = np.flatnonzero(first)
    best = np.maximum.reduceat(rewards, starts)
    return Pairs(rows[starts], cols[starts], times[starts], best.astype(np.float32))


def user_item_pairs(graph: ExportGraph, rewards: dict[str, float]) -> Pairs:
    """All User → Item interactions as unique pairs, rewards taken from the relation type."""
    parts = []
    for et in interaction_edge_types(graph):
        e = graph.edges[et]
        reward = np.full(e.num_edges, rewards.get(et[1], 1.0), dtype=np.float32)
        parts.append((e.index[0], e.index[1], e.time, reward))
    if not parts:
        return Pairs.empty()
    return _unique_pairs(
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
        np.concatenate([p[3] for p in parts]),
        graph.num_nodes(ITEM),
    )


def user_query_pairs(graph: ExportGraph) -> Pairs:
    e = graph.edges.get((USER, SEARCHED, QUERY))
    if e is None:
        return Pairs.empty()
    return _unique_pairs(
        e.index[0],
        e.index[1],
        e.time,
        np.ones(e.num_edges, np.float32),
        graph.num_nodes(QUERY),
    )


def in_sorted(keys: IntArray, sorted_keys: IntArray) -> NDArray[np.bool_]:
    """Whether each of ``keys`` is one of ``sorted_keys`` (sorted ascending, e.g. the pair keys
    ``row * n_cols + col`` of a split): ``numpy.searchsorted`` and one comparison per key.
    The one membership test of the training code (splits, ``HeteroData`` masks, the
    mini-batch negatives' rejection); numpy because those keys are numpy arrays everywhere
    else in the training data."""
    if len(sorted_keys) == 0:
        return np.zeros(len(keys), dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return np.asarray(sorted_keys[pos] == keys)


def sample_negatives(
    rng: np.random.Generator,
    users: IntArray,
    n: int,
    n_items: int,
    is_positive: Callable[[IntArray, IntArray], NDArray[np.bool_]],
    max_tries: int = 10,
    pool: IntArray | None = None,
) -> IntArray:
    """Sample ``n`` items per user, uniformly, avoiding pairs for which
    ``is_positive(users, items)`` is true (rejection sampling; after ``max_tries`` rounds the
    few remaining collisions are kept). ``pool``: the item rows to draw from (default: all
    ``n_items``). Returns ``[len(users), n]``."""

    def draw(size: int | tuple[int, int]) -> IntArray:
        if pool is None:
            return rng.integers(0, n_items, size=size)
        return pool[rng.integers(0, len(pool), size=size)]

    out = draw((len(users), n))
    flat_users = np.repeat(users, n)
    flat = out.reshape(-1)
    bad = np.asarray(is_positive(flat_users, flat))
    tries = 0
    while bad.any() and tries < max_tries:
        idx = np.flatnonzero(bad)
        flat[idx] = draw(len(idx))
        bad[idx] = np.asarray(is_positive(flat_users[idx], flat[idx]))
        tries += 1
    return flat.reshape(len(users), n)
