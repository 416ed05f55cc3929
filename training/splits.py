"""Holding out validation and test interactions: the protocols of ``docs/evaluation.md``
(leave-last-out, ratio splits random and temporal, cold items), the :class:`Split` they
produce with its training graph, and the evaluation candidates drawn from it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from graphstore.export_format import ITEM, QUERY, SEARCHED, USER, EdgeType
from training.data import (
    EdgeSet,
    ExportGraph,
    IntArray,
    Pairs,
    in_sorted,
    sample_negatives,
    user_item_pairs,
    user_query_pairs,
)

logger = logging.getLogger(__name__)


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
        return in_sorted(users.astype(np.int64) * max(self.n_items, 1) + items, self.known_keys)

    def is_train(self, users: IntArray, items: IntArray) -> NDArray[np.bool_]:
        """Whether each (user, item) pair is a training interaction."""
        return in_sorted(users.astype(np.int64) * max(self.n_items, 1) + items, self.train_keys)


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
            mask = in_sorted(e.index[0] * max(n_items, 1) + e.index[1], train_keys)
            train_edges[et] = e.subset(mask)
        elif et == (USER, SEARCHED, QUERY):
            mask = in_sorted(e.index[0] * max(n_queries, 1) + e.index[1], search_keys)
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
