"""Evaluation metrics as pure numpy functions, and a registry of them by name.

Ranking metrics take a boolean ``hits`` matrix ``[users, K']`` (``hits[u, r]`` is true when the
item ranked ``r + 1`` for user ``u`` is relevant, ``K' >= K``) and ``n_relevant [users]``, the
number of relevant items each user has; they return the mean over users. Users without any
relevant item must be filtered out by the caller.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

BoolMatrix = NDArray[np.bool_]


def auc(labels: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve (ties count one half), i.e. the probability that a random
    positive is scored above a random negative. ``nan`` when one class is missing."""
    y = np.asarray(labels).astype(bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    s_sorted = s[order]
    ranks = np.empty(len(s), dtype=np.float64)
    # average ranks of ties (1-based)
    _, first, counts = np.unique(s_sorted, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def gauc(labels: ArrayLike, scores: ArrayLike, groups: ArrayLike) -> float:
    """Group AUC (DIN): per-group AUC weighted by the group's size, over groups with both
    classes."""
    y = np.asarray(labels).astype(bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    g = np.asarray(groups).ravel()
    order = np.argsort(g, kind="mergesort")
    y, s, g = y[order], s[order], g[order]
    _, starts = np.unique(g, return_index=True)
    bounds = [*starts.tolist(), len(g)]
    total, weight = 0.0, 0
    for a, b in itertools.pairwise(bounds):
        value = auc(y[a:b], s[a:b])
        if not np.isnan(value):
            total += value * (b - a)
            weight += b - a
    return total / weight if weight else float("nan")


def log_loss(labels: ArrayLike, logits: ArrayLike) -> float:
    """Mean binary cross-entropy of logits (paper eq. 7), computed stably."""
    y = np.asarray(labels, dtype=np.float64).ravel()
    z = np.asarray(logits, dtype=np.float64).ravel()
    return float(np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))))


def relaimpr(auc_model: float, auc_base: float) -> float:
    """RelaImpr (paper eq. 8) in percent: ``((AUC_model − 0.5)/(AUC_base − 0.5) − 1) · 100``."""
    if auc_base == 0.5:
        return float("nan")
    return ((auc_model - 0.5) / (auc_base - 0.5) - 1.0) * 100.0


def _check(hits: BoolMatrix, k: int) -> BoolMatrix:
    hits = np.asarray(hits, dtype=bool)
    if hits.ndim != 2:
        raise ValueError("hits must be a [users, K] matrix")
    if k <= 0:
        raise ValueError("k must be positive")
    return hits[:, :k]


def precision_at_k(hits: BoolMatrix, n_relevant: ArrayLike, k: int) -> float:
    """Mean over users of (relevant items in the top K) / K."""
    h = _check(hits, k)
    return float(np.mean(h.sum(1) / k)) if len(h) else float("nan")


def recall_at_k(hits: BoolMatrix, n_relevant: ArrayLike, k: int) -> float:
    """Mean over users of (relevant items in the top K) / (relevant items)."""
    h = _check(hits, k)
    n = np.asarray(n_relevant, dtype=np.float64)
    return float(np.mean(h.sum(1) / np.maximum(n, 1))) if len(h) else float("nan")


def hit_rate_at_k(hits: BoolMatrix, n_relevant: ArrayLike, k: int) -> float:
    """Fraction of users with at least one relevant item in the top K."""
    h = _check(hits, k)
    return float(np.mean(h.any(1))) if len(h) else float("nan")


def ndcg_at_k(hits: BoolMatrix, n_relevant: ArrayLike, k: int) -> float:
    """Mean binary NDCG@K: DCG = Σ_r rel_r / log2(r + 1) over the top K, divided by the DCG of
    an ideal list with ``min(n_relevant, K)`` relevant items first."""
    h = _check(hits, k).astype(np.float64)
    if not len(h):
        return float("nan")
    discounts = 1.0 / np.log2(np.arange(2, h.shape[1] + 2))
    dcg = h @ discounts
    ideal_n = np.minimum(np.asarray(n_relevant, dtype=np.int64), h.shape[1])
    cum = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))])
    idcg = cum[ideal_n]
    return float(np.mean(np.where(idcg > 0, dcg / np.where(idcg > 0, idcg, 1), 0.0)))


def map_at_k(hits: BoolMatrix, n_relevant: ArrayLike, k: int) -> float:
    """Mean average precision at K: AP@K = Σ_r P@r · rel_r / min(n_relevant, K)."""
    h = _check(hits, k).astype(np.float64)
    if not len(h):
        return float("nan")
    prec = np.cumsum(h, axis=1) / np.arange(1, h.shape[1] + 1)
    denom = np.minimum(np.asarray(n_relevant, dtype=np.float64), k)
    return float(np.mean((prec * h).sum(1) / np.maximum(denom, 1)))


def mrr(first_rank: ArrayLike) -> float:
    """Mean reciprocal rank, from each user's 1-based rank of the first relevant item
    (``0`` or ``inf`` when none was ranked)."""
    r = np.asarray(first_rank, dtype=np.float64)
    if not len(r):
        return float("nan")
    with np.errstate(divide="ignore"):
        rr = np.where((r > 0) & np.isfinite(r), 1.0 / r, 0.0)
    return float(np.mean(rr))


RankingMetric = Callable[[BoolMatrix, ArrayLike, int], float]

#: Top-K metrics by name: result keys are ``f"{name}@{k}"``.
RANKING_METRICS: dict[str, RankingMetric] = {
    "precision": precision_at_k,
    "recall": recall_at_k,
    "ndcg": ndcg_at_k,
    "hr": hit_rate_at_k,
    "map": map_at_k,
}

#: Every metric function by name.
METRICS: dict[str, Callable[..., Any]] = {
    "auc": auc,
    "gauc": gauc,
    "logloss": log_loss,
    "relaimpr": relaimpr,
    "mrr": mrr,
    **RANKING_METRICS,
}


def get_metric(name: str) -> Callable[..., Any]:
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(sorted(METRICS))}") from None


def ranking_report(
    hits: BoolMatrix, n_relevant: ArrayLike, first_rank: ArrayLike, ks: tuple[int, ...]
) -> dict[str, float]:
    """All registered top-K metrics at every K, plus MRR."""
    out: dict[str, float] = {}
    for k in ks:
        for name, fn in RANKING_METRICS.items():
            out[f"{name}@{k}"] = fn(hits, n_relevant, k)
    out["mrr"] = mrr(first_rank)
    return out
