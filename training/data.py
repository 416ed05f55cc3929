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
    "PROTOCOLS",
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
    "Split",
    "eval_candidates",
    "interaction_edge_types",
    "load_export",
    "ratio_counts",
    "read_contract",
    "sample_negatives",
    "split_interactions",
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


def _leave_last_out(
    pairs: Pairs, n_rows: int, min_count: int, holdouts: int, rng: np.random.Generator
) -> tuple[IntArray, list[IntArray]]:
    """Order each row's pairs by time (unknown times first, ties at random) and hold out the
    last ``holdouts`` pairs of rows with at least ``min_count`` pairs.

    Returns the position order and, per held-out slot (last first), the pair indices.
    """
    t = np.where(np.isnan(pairs.time), -np.inf, pairs.time)
    order = np.lexsort((rng.random(len(pairs)), t, pairs.row))
    counts = np.bincount(pairs.row, minlength=n_rows)
    ends = np.cumsum(counts)
    eligible = np.flatnonzero(counts >= min_count)
    held = [order[ends[eligible] - 1 - h] for h in range(holdouts)]
    return order, held


@dataclass
class Split:
    """Leave-one-out split of one export for one seed, plus the training graph."""

    graph: ExportGraph
    seed: int
    n_users: int
    n_items: int
    n_queries: int
    train: Pairs
    val: Pairs
    test: Pairs
    train_search: Pairs
    val_search: Pairs
    test_search: Pairs
    #: Edges message passing may use: interaction/search edges of the training pairs only.
    train_edges: dict[EdgeType, EdgeSet]
    #: Per user, training items in time order (CSR: indptr [U + 1], items).
    history_indptr: IntArray
    history_items: IntArray
    #: Every (user, item) key ``user · n_items + item`` of any split, sorted (evaluation
    #: negatives avoid these).
    known_keys: IntArray
    #: Keys of the training pairs only, sorted (training negatives avoid these).
    train_keys: IntArray
    #: How val/test were held out (one of :data:`PROTOCOLS`).
    protocol: str = "leave-last-out"
    #: Cold-item protocol: the items held out with all their interactions (test, validation).
    cold_items: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))
    cold_val_items: IntArray = field(default_factory=lambda: np.zeros(0, np.int64))

    def user_history(self, user: int) -> IntArray:
        return self.history_items[self.history_indptr[user] : self.history_indptr[user + 1]]

    def is_known(self, users: IntArray, items: IntArray) -> NDArray[np.bool_]:
        """Whether each (user, item) pair occurs anywhere in the logs."""
        return _in_sorted(users.astype(np.int64) * max(self.n_items, 1) + items, self.known_keys)

    def is_train(self, users: IntArray, items: IntArray) -> NDArray[np.bool_]:
        """Whether each (user, item) pair is a training interaction."""
        return _in_sorted(users.astype(np.int64) * max(self.n_items, 1) + items, self.train_keys)


#: Ways to hold out validation and test interactions (``docs/evaluation.md``).
PROTOCOLS = ("leave-last-out", "ratio-random", "ratio-temporal", "cold-item")


def ratio_counts(total: int, ratios: tuple[float, ...]) -> list[int]:
    """How many of a user's ``total`` interactions go to each part (RecBole's
    ``split_by_ratio``): ``int(ratio · total)`` for every part after the first, the rest to
    the first; then, from the last part back, a part whose share is between 0 and 1
    interaction gets one (taken from the first) while the first keeps more than one."""
    cnt = [int(r * total) for r in ratios]
    cnt[0] = total - sum(cnt[1:])
    for i in range(1, len(ratios)):
        if cnt[0] <= 1:
            break
        if 0 < ratios[-i] * total < 1:
            cnt[-i] += 1
            cnt[0] -= 1
    return cnt


def _ratio_split(
    pairs: Pairs,
    n_rows: int,
    min_count: int,
    ratios: tuple[float, ...],
    temporal: bool,
    rng: np.random.Generator,
) -> tuple[IntArray, IntArray, IntArray]:
    """Per row, order the pairs (by time with ties at random when ``temporal``, else a random
    permutation) and cut them by :func:`ratio_counts`: the first part trains, the second
    validates, the third tests. Rows with fewer than ``min_count`` pairs train only.
    Returns the pair indices of (train, val, test)."""
    noise = rng.random(len(pairs))
    if temporal:
        t = np.where(np.isnan(pairs.time), -np.inf, pairs.time)
        order = np.lexsort((noise, t, pairs.row))
    else:
        order = np.lexsort((noise, pairs.row))
    counts = np.bincount(pairs.row, minlength=n_rows)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    part = np.zeros(len(pairs), dtype=np.int8)
    for u in np.flatnonzero(counts >= min_count):
        n_train, n_val, _ = ratio_counts(int(counts[u]), ratios)
        a = starts[u]
        part[order[a + n_train : a + n_train + n_val]] = 1
        part[order[a + n_train + n_val : a + counts[u]]] = 2
    train = order[part[order] == 0]
    return train, np.flatnonzero(part == 1), np.flatnonzero(part == 2)


def _cold_item_split(
    pairs: Pairs, share: float, rng: np.random.Generator
) -> tuple[IntArray, IntArray, IntArray, IntArray, IntArray]:
    """Hold out ``share`` of the interacted items for test and as many for validation, each
    with every interaction it has. Returns (train, val, test) pair indices, training ones in
    (user, time) order, and the test and validation items."""
    seen = np.unique(pairs.col)
    n_cold = round(share * len(seen))
    if share > 0 and len(seen) >= 3:
        n_cold = min(max(n_cold, 1), (len(seen) - 1) // 2)
    chosen = rng.permutation(seen)
    test_items = np.sort(chosen[:n_cold])
    val_items = np.sort(chosen[n_cold : 2 * n_cold])
    part = np.zeros(len(pairs), dtype=np.int8)
    part[np.isin(pairs.col, val_items)] = 1
    part[np.isin(pairs.col, test_items)] = 2
    t = np.where(np.isnan(pairs.time), -np.inf, pairs.time)
    order = np.lexsort((rng.random(len(pairs)), t, pairs.row))
    train = order[part[order] == 0]
    return train, np.flatnonzero(part == 1), np.flatnonzero(part == 2), test_items, val_items


def split_interactions(
    graph: ExportGraph,
    seed: int,
    rewards: dict[str, float],
    min_interactions: int = 3,
    protocol: str = "leave-last-out",
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
    cold_share: float = 0.1,
) -> Split:
    """Hold out validation and test interactions by ``protocol``:

    * ``leave-last-out``: per user, last → test, second last → val, rest → train;
    * ``ratio-random`` / ``ratio-temporal``: per user, ``ratios`` (train/val/test) of the
      interactions in random or time order (:func:`ratio_counts`);
    * ``cold-item``: ``cold_share`` of the items with all their interactions → test, as many
      → validation; those items keep their side-information edges (category, term) but lose
      every interaction edge (users, queries' ``LED_TO``).

    Users with fewer than ``min_interactions`` interactions train only (first three)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    rng = np.random.default_rng(seed)
    n_users, n_items, n_queries = (graph.num_nodes(t) for t in (USER, ITEM, QUERY))
    pairs = user_item_pairs(graph, rewards)
    cold_test = cold_val = np.zeros(0, np.int64)
    if protocol == "leave-last-out":
        order, (test_idx, val_idx) = _leave_last_out(pairs, n_users, min_interactions, 2, rng)
        in_train = np.ones(len(pairs), dtype=bool)
        in_train[test_idx] = False
        in_train[val_idx] = False
        train_order = order[in_train[order]]
    elif protocol == "cold-item":
        train_order, val_idx, test_idx, cold_test, cold_val = _cold_item_split(
            pairs, cold_share, rng
        )
    else:
        train_order, val_idx, test_idx = _ratio_split(
            pairs, n_users, min_interactions, ratios, protocol == "ratio-temporal", rng
        )
    train = pairs.subset(train_order)  # sorted by (user, time) or (user, random order)

    searches = user_query_pairs(graph)
    _, (test_s, val_s) = _leave_last_out(searches, n_users, min_interactions, 2, rng)
    s_train = np.ones(len(searches), dtype=bool)
    s_train[test_s] = False
    s_train[val_s] = False

    train_edges: dict[EdgeType, EdgeSet] = {}
    train_keys = np.sort(train.row * max(n_items, 1) + train.col)
    search_keys = np.sort(searches.row[s_train] * max(n_queries, 1) + searches.col[s_train])
    for et, e in graph.edges.items():
        if et[0] == USER and et[2] == ITEM:
            mask = _in_sorted(e.index[0] * max(n_items, 1) + e.index[1], train_keys)
            train_edges[et] = e.subset(mask)
        elif et == (USER, SEARCHED, QUERY):
            mask = _in_sorted(e.index[0] * max(n_queries, 1) + e.index[1], search_keys)
            train_edges[et] = e.subset(mask)
        elif len(cold_test) and et[0] == QUERY and et[2] == ITEM:
            # a query's clicks on a cold item are interactions of that item
            cold = np.concatenate([cold_test, cold_val])
            train_edges[et] = e.subset(~np.isin(e.index[1], cold))
        else:
            train_edges[et] = e

    counts = np.bincount(train.row, minlength=n_users)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    split = Split(
        graph=graph,
        seed=seed,
        n_users=n_users,
        n_items=n_items,
        n_queries=n_queries,
        train=train,
        val=pairs.subset(np.sort(val_idx)),
        test=pairs.subset(np.sort(test_idx)),
        train_search=searches.subset(s_train),
        val_search=searches.subset(np.sort(val_s)),
        test_search=searches.subset(np.sort(test_s)),
        train_edges=train_edges,
        history_indptr=indptr,
        history_items=train.col.copy(),
        known_keys=np.sort(pairs.row * max(n_items, 1) + pairs.col),
        train_keys=train_keys,
        protocol=protocol,
        cold_items=cold_test,
        cold_val_items=cold_val,
    )
    logger.info(
        "split %s seed=%d: %d train / %d val / %d test interactions, %d / %d / %d searches",
        protocol,
        seed,
        len(split.train),
        len(split.val),
        len(split.test),
        len(split.train_search),
        len(split.val_search),
        len(split.test_search),
    )
    return split


def _in_sorted(keys: IntArray, sorted_keys: IntArray) -> NDArray[np.bool_]:
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


def eval_candidates(
    split: Split, which: str, n_negatives: int, seed_offset: int = 0
) -> tuple[IntArray, IntArray, IntArray]:
    """Fixed evaluation negatives for the val or test positives of ``split``.

    Returns ``(users [P], positives [P], negatives [P, n])``; negatives are items the user never
    interacted with (in any split), distinct within a row when the catalogue allows it.
    """
    pairs = split.val if which == "val" else split.test
    rng = np.random.default_rng([split.seed, 7919 + seed_offset, 0 if which == "val" else 1])
    n = min(n_negatives, max(split.n_items - 1, 1))
    negs = sample_negatives(rng, pairs.row, n, split.n_items, split.is_known)
    # Rows with a repeated or known item (small catalogues): draw them again without
    # replacement from the user's unseen items.
    all_items = np.arange(split.n_items)
    for r in range(len(negs)):
        row = negs[r]
        user = np.full(len(row), pairs.row[r])
        if len(np.unique(row)) < len(row) or split.is_known(user, row).any():
            seen = split.is_known(np.full(split.n_items, pairs.row[r]), all_items)
            allowed = all_items[~seen]
            if len(allowed):
                negs[r] = rng.choice(allowed, size=n, replace=len(allowed) < n)
    return pairs.row, pairs.col, negs
