"""Evaluation metrics as pure numpy functions, and a registry of them by name.

Ranking metrics take a boolean ``hits`` matrix ``[users, K']`` (``hits[u, r]`` is true when the
item ranked ``r + 1`` for user ``u`` is relevant, ``K' >= K``) and ``n_relevant [users]``, the
number of relevant items each user has; they return the mean over users. Users without any
relevant item must be filtered out by the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

BoolMatrix = NDArray[np.bool_]
FloatVector = NDArray[np.float64]


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
    classes. Each group's AUC is :func:`auc`'s (ties count one half), computed for all groups
    at once from average ranks within ``(group, score)`` runs."""
    y = np.asarray(labels).astype(bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    g = np.asarray(groups).ravel()
    if len(g) == 0:
        return float("nan")
    order = np.lexsort((s, g))  # by group, then score (NaN last, as argsort places it)
    y, s, g = y[order], s[order], g[order]
    n = len(g)
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = g[1:] != g[:-1]
    same_score = np.zeros(n, dtype=bool)
    same_score[1:] = (s[1:] == s[:-1]) | (np.isnan(s[1:]) & np.isnan(s[:-1]))
    new_run = new_group | ~same_score
    group_id = np.cumsum(new_group) - 1
    group_start = np.flatnonzero(new_group)
    run_id = np.cumsum(new_run) - 1
    run_start = np.flatnonzero(new_run)
    run_end = np.append(run_start[1:], n)  # runs never cross a group boundary
    # average 1-based rank of each run within its group
    run_rank = (run_start + run_end - 1) / 2.0 - group_start[group_id[run_start]] + 1.0
    rank = run_rank[run_id]
    size = np.bincount(group_id).astype(np.float64)
    n_pos = np.bincount(group_id, weights=y).astype(np.float64)
    n_neg = size - n_pos
    rank_sum = np.bincount(group_id, weights=np.where(y, rank, 0.0))
    both = (n_pos > 0) & (n_neg > 0)
    if not both.any():
        return float("nan")
    per_group = (rank_sum[both] - n_pos[both] * (n_pos[both] + 1) / 2.0) / (
        n_pos[both] * n_neg[both]
    )
    return float(np.sum(per_group * size[both]) / np.sum(size[both]))


def log_loss(labels: ArrayLike, logits: ArrayLike) -> float:
    """Mean binary cross-entropy of logits (paper eq. 7), computed stably."""
    y = np.asarray(labels, dtype=np.float64).ravel()
    z = np.asarray(logits, dtype=np.float64).ravel()
    return float(np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))))


def relaimpr(auc_model: float, auc_base: float) -> float:
    """RelaImpr (paper eq. 8) in percent: ``((AUC_model − 0.5)/(AUC_base − 0.5) − 1) · 100``.
    ``nan`` when the base AUC is at or below 0.5 (a base no better than chance makes the ratio
    meaningless: its sign flips or it divides by zero)."""
    if not auc_base > 0.5:
        return float("nan")
    return ((auc_model - 0.5) / (auc_base - 0.5) - 1.0) * 100.0


def _check(hits: BoolMatrix, k: int) -> BoolMatrix:
    hits = np.asarray(hits, dtype=bool)
    if hits.ndim != 2:
        raise ValueError("hits must be a [users, K] matrix")
    if k <= 0:
        raise ValueError("k must be positive")
    return hits[:, :k]


def precision_per_user(hits: BoolMatrix, n_relevant: ArrayLike, k: int) -> FloatVector:
    """Per user: (relevant items in the top K) / K."""
    h = _check(hits, k)
    return np.asarray(h.sum(1) / k, dtype=np.float64)


def recall_per_user(hits: BoolMatrix, n_relevant: ArrayLike, k: int) -> FloatVector:
    """Per user: (relevant items in the top K) / (relevant items), the held-out items of the
    user (RecBole's recall: the denominator is not capped at K)."""
    h = _check(hits, k)
    n = np.asarray(n_relevant, dtype=np.float64)
    return np.asarray(h.sum(1) / np.maximum(n, 1), dtype=np.float64)


def hit_rate_per_user(hits: BoolMatrix, n_relevant: ArrayLike, k: int) -> FloatVector:
    """Per user: 1 when at least one relevant item is in the top K."""
    return np.asarray(_check(hits, k).any(1), dtype=np.float64)


def ndcg_per_user(hits: BoolMatrix, n_relevant: ArrayLike, k: int) -> FloatVector:
    """Per user binary NDCG@K: DCG = Σ_r rel_r / log2(r + 1) over the top K, divided by the DCG
    of an ideal list with ``min(n_relevant, K)`` relevant items first."""
    h = _check(hits, k).astype(np.float64)
    discounts = 1.0 / np.log2(np.arange(2, h.shape[1] + 2))
    dcg = h @ discounts
    ideal_n = np.minimum(np.asarray(n_relevant, dtype=np.int64), h.shape[1])
    cum = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))])
    idcg = cum[ideal_n]
    return np.asarray(np.where(idcg > 0, dcg / np.where(idcg > 0, idcg, 1), 0.0))


def map_per_user(hits: BoolMatrix, n_relevant: ArrayLike, k: int) -> FloatVector:
    """Per user AP@K = Σ_r P@r · rel_r / min(n_relevant, K)."""
    h = _check(hits, k).astype(np.float64)
    prec = np.cumsum(h, axis=1) / np.arange(1, h.shape[1] + 1)
    denom = np.minimum(np.asarray(n_relevant, dtype=np.float64), k)
    return np.asarray((prec * h).sum(1) / np.maximum(denom, 1))


def reciprocal_rank(first_rank: ArrayLike) -> FloatVector:
    """Per user 1 / rank of the first relevant item (``0`` when the rank is ``0`` or inf)."""
    r = np.asarray(first_rank, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.asarray(np.where((r > 0) & np.isfinite(r), 1.0 / r, 0.0), dtype=np.float64)


def _mean(values: FloatVector) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def precision_at_k(hits: BoolMatrix, n_relevant: ArrayLike, k: int) -> float:
    """Mean over users of (relevant items in the top K) / K."""
    return _mean(precision_per_user(hits, n_relevant, k))


def recall_at_k(hits: BoolMatrix, n_relevant: ArrayLike, k: int) -> float:
    """Mean over users of (relevant items in the top K) / (relevant items)."""
    return _mean(recall_per_user(hits, n_relevant, k))


def hit_rate_at_k(hits: BoolMatrix, n_relevant: ArrayLike, k: int) -> float:
    """Fraction of users with at least one relevant item in the top K."""
    return _mean(hit_rate_per_user(hits, n_relevant, k))


def ndcg_at_k(hits: BoolMatrix, n_relevant: ArrayLike, k: int) -> float:
    """Mean binary NDCG@K (:func:`ndcg_per_user`)."""
    return _mean(ndcg_per_user(hits, n_relevant, k))


def map_at_k(hits: BoolMatrix, n_relevant: ArrayLike, k: int) -> float:
    """Mean average precision at K: AP@K = Σ_r P@r · rel_r / min(n_relevant, K)."""
    return _mean(map_per_user(hits, n_relevant, k))


def mrr(first_rank: ArrayLike) -> float:
    """Mean reciprocal rank, from each user's 1-based rank of the first relevant item
    (``0`` or ``inf`` when none was ranked)."""
    return _mean(reciprocal_rank(first_rank))


def bootstrap_ci(
    values: ArrayLike, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (one value per user; users
    resampled with replacement). ``(nan, nan)`` for no values."""
    v = np.asarray(values, dtype=np.float64)
    if not len(v):
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for start in range(0, n_boot, 250):  # bounded memory: 250 resamples at a time
        stop = min(start + 250, n_boot)
        means[start:stop] = v[rng.integers(0, len(v), (stop - start, len(v)))].mean(1)
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(means, [tail, 100.0 - tail])
    return float(lo), float(hi)


def paired_bootstrap(
    a: ArrayLike, b: ArrayLike, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> dict[str, float]:
    """Paired bootstrap of ``mean(a − b)`` over users (``a[i]``, ``b[i]`` are one user's
    metric under two models): the difference, its percentile interval, and
    ``p`` = two-sided share of resampled differences on the other side of 0."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if not len(d):
        nan = float("nan")
        return {"diff": nan, "lo": nan, "hi": nan, "p": nan}
    lo, hi = bootstrap_ci(d, n_boot, seed, level)
    rng = np.random.default_rng(seed)
    means = np.concatenate(
        [
            d[rng.integers(0, len(d), (min(250, n_boot - s), len(d)))].mean(1)
            for s in range(0, n_boot, 250)
        ]
    )
    p = 2.0 * min(float(np.mean(means <= 0)), float(np.mean(means >= 0)))
    return {"diff": float(d.mean()), "lo": lo, "hi": hi, "p": min(p, 1.0)}


RankingMetric = Callable[[BoolMatrix, ArrayLike, int], float]

#: Top-K metrics by name: result keys are ``f"{name}@{k}"``.
#: The same metrics per user (the vectors the bootstrap intervals resample).
PER_USER_METRICS: dict[str, Callable[[BoolMatrix, ArrayLike, int], FloatVector]] = {
    "precision": precision_per_user,
    "recall": recall_per_user,
    "ndcg": ndcg_per_user,
    "hr": hit_rate_per_user,
    "map": map_per_user,
}

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


def ranking_per_user(
    hits: BoolMatrix, n_relevant: ArrayLike, first_rank: ArrayLike, ks: tuple[int, ...]
) -> dict[str, FloatVector]:
    """:func:`ranking_report`'s metrics per user (their means are the report's values)."""
    out: dict[str, FloatVector] = {}
    for k in ks:
        for name, fn in PER_USER_METRICS.items():
            out[f"{name}@{k}"] = fn(hits, n_relevant, k)
    out["mrr"] = reciprocal_rank(first_rank)
    return out
