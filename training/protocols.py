"""Evaluation protocols, shared by validation during training and the evaluation runner.

* **Click prediction** (DIN protocol): per user the held-out interaction is the positive, with
  ``click_negatives`` sampled items the user never interacted with as negatives → AUC (pooled
  over users), GAUC, log loss.
* **Top-K, full ranking**: the held-out items of a user (one under leave-last-out, all of the
  user's validation or test interactions under the ratio and cold-item splits) are ranked
  against *every* item the user has not interacted with in training (and, for the test split,
  validation) → Precision/Recall/NDCG/HR/MAP@K and MRR, per user (:class:`RankingTask`,
  :func:`rank_users`) and averaged over users. Every held-out item is relevant:
  ``recall@K = hits / |held-out items|``, NDCG's ideal list holds ``min(|held-out|, K)``
  relevant items.
* **Top-K, sampled ranking**: the held-out item against ``sampled_candidates − 1`` sampled
  negatives (candidate-set size reported alongside the numbers).
* **Query suggestion**: the user's held-out (last) searched query ranked against all queries
  they did not search in training → MRR and NDCG@K.

Ties count against the held-out item (pessimistic rank), so constant scorers are not rewarded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from numpy.typing import NDArray

from training.data import IntArray, in_sorted
from training.metrics import FloatVector, auc, gauc, log_loss, ranking_per_user, ranking_report
from training.models.base import RecModel
from training.splits import Split

logger = logging.getLogger(__name__)

FloatMatrix = NDArray[np.float32]


class Scorer(Protocol):
    """Scores (logits, higher = better) of items and queries for users."""

    def pairs(self, users: IntArray, items: IntArray) -> FloatMatrix:
        """``users [B]``, ``items [B, C]`` → scores ``[B, C]``."""
        ...

    def all_items(self, users: IntArray) -> FloatMatrix:
        """Scores ``[B, n_items]``."""
        ...

    def queries(self, users: IntArray) -> FloatMatrix | None:
        """Scores ``[B, n_queries]``, or ``None`` when the model cannot rank queries."""
        ...


@dataclass
class EmbeddingScorer:
    """Dot-product scoring from exported vectors (the same arithmetic as serving)."""

    user: FloatMatrix
    item: FloatMatrix
    query: FloatMatrix | None = None

    def pairs(self, users: IntArray, items: IntArray) -> FloatMatrix:
        return np.einsum("bd,bcd->bc", self.user[users], self.item[items])

    def all_items(self, users: IntArray) -> FloatMatrix:
        return self.user[users] @ self.item.T

    def queries(self, users: IntArray) -> FloatMatrix | None:
        return None if self.query is None else self.user[users] @ self.query.T


class ModelScorer:
    """Scoring through a model's forward pass (any model of the registry)."""

    def __init__(self, model: RecModel, device: torch.device) -> None:
        self.model = model
        self.device = device
        model.eval()
        with torch.no_grad():
            self.enc = model.encode()

    def _t(self, a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=torch.long, device=self.device)

    def pairs(self, users: IntArray, items: IntArray) -> FloatMatrix:
        uu = np.broadcast_to(users[:, None], items.shape)
        with torch.no_grad():
            s = self.model.score(self.enc, self._t(uu.reshape(-1)), self._t(items.reshape(-1)))
        return s.float().view(items.shape).cpu().numpy()

    def all_items(self, users: IntArray) -> FloatMatrix:
        with torch.no_grad():
            return self.model.score_all(self.enc, self._t(users)).float().cpu().numpy()

    def queries(self, users: IntArray) -> FloatMatrix | None:
        n_q = self.model.n_queries
        if n_q == 0:
            return None
        q = np.broadcast_to(np.arange(n_q)[None, :], (len(users), n_q))
        uu = np.broadcast_to(users[:, None], q.shape)
        with torch.no_grad():
            s = self.model.score_queries(self.enc, self._t(uu.reshape(-1)), self._t(q.reshape(-1)))
        return None if s is None else s.float().view(q.shape).cpu().numpy()


def _batches(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def _click_scores(
    scorer: Scorer, users: IntArray, positives: IntArray, negatives: IntArray
) -> tuple[NDArray[np.bool_], FloatMatrix]:
    """Labels and scores ``[P, 1 + n]`` of each user's positive (column 0) and negatives."""
    cand = np.concatenate([positives[:, None], negatives], axis=1)
    scores = np.concatenate([scorer.pairs(users[s], cand[s]) for s in _batches(len(users), 4096)])
    labels = np.zeros_like(cand, dtype=bool)
    labels[:, 0] = True
    return labels, scores


def click_auc(scorer: Scorer, users: IntArray, positives: IntArray, negatives: IntArray) -> float:
    """The AUC of :func:`click_prediction` alone (its GAUC loops over every user)."""
    if len(users) == 0:
        return float("nan")
    return auc(*_click_scores(scorer, users, positives, negatives))


def click_prediction(
    scorer: Scorer, users: IntArray, positives: IntArray, negatives: IntArray
) -> dict[str, float]:
    """AUC / GAUC / log loss of each user's positive against its sampled negatives."""
    if len(users) == 0:
        return {"auc": float("nan"), "gauc": float("nan"), "logloss": float("nan")}
    labels, scores = _click_scores(scorer, users, positives, negatives)
    groups = np.broadcast_to(np.arange(len(users))[:, None], labels.shape)
    return {
        "auc": auc(labels, scores),
        "gauc": gauc(labels, scores, groups),
        "logloss": log_loss(labels, scores),
    }


def _report_from_ranks(ranks: NDArray[np.float64], ks: tuple[int, ...]) -> dict[str, float]:
    width = max(ks)
    hits = (ranks[:, None] - 1) == np.arange(width)[None, :]
    return ranking_report(hits, np.ones(len(ranks)), ranks, ks)


def sampled_ranking(
    scorer: Scorer,
    users: IntArray,
    positives: IntArray,
    negatives: IntArray,
    ks: tuple[int, ...],
) -> dict[str, float]:
    """Top-K metrics of the positive among ``1 + negatives.shape[1]`` candidates."""
    if len(users) == 0:
        return {}
    cand = np.concatenate([positives[:, None], negatives], axis=1)
    scores = np.concatenate([scorer.pairs(users[s], cand[s]) for s in _batches(len(users), 4096)])
    pos = scores[:, :1]
    ranks = 1.0 + (scores[:, 1:] >= pos).sum(1)
    out = _report_from_ranks(ranks.astype(np.float64), ks)
    out["candidates"] = float(cand.shape[1])
    return out


@dataclass
class RankingTask:
    """Who is ranked, what is relevant for each, and what is removed from their candidates
    (besides their training items). ``relevant`` and ``exclude`` are CSR lists over
    ``users`` (``*_indptr [B + 1]``)."""

    users: IntArray
    relevant_indptr: IntArray
    relevant: IntArray
    exclude_indptr: IntArray
    exclude: IntArray

    def __len__(self) -> int:
        return len(self.users)

    def relevant_of(self, b: int) -> IntArray:
        return self.relevant[self.relevant_indptr[b] : self.relevant_indptr[b + 1]]

    def exclude_of(self, b: int) -> IntArray:
        return self.exclude[self.exclude_indptr[b] : self.exclude_indptr[b + 1]]


def _grouped(rows: IntArray, cols: IntArray, users: IntArray) -> tuple[IntArray, IntArray]:
    """CSR (indptr over ``users``, items) of the (row, col) pairs (``rows`` sorted)."""
    order = np.lexsort((cols, rows))
    rows, cols = rows[order], cols[order]
    lo = np.searchsorted(rows, users, "left")
    hi = np.searchsorted(rows, users, "right")
    counts = hi - lo
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    parts = [np.arange(a, b) for a, b in zip(lo, hi, strict=True)]
    take = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    return indptr, cols[take.astype(np.int64)].astype(np.int64)


#: Random streams (``default_rng([seed, stream])``) of the users each capped protocol ranks.
RANKING_STREAM = 4242
QUERY_STREAM = 4243


def capped_users(users: IntArray, max_users: int | None, seed: int, stream: int) -> IntArray:
    """``users`` (sorted, distinct) when there are at most ``max_users`` of them, else
    ``max_users`` of them drawn without replacement from ``default_rng([seed, stream])``,
    sorted. The evaluation cap of :func:`ranking_task` and :func:`query_suggestion`."""
    if max_users is None or len(users) <= max_users:
        return users
    rng = np.random.default_rng([seed, stream])
    return np.sort(rng.choice(users, max_users, replace=False))


def ranking_task(
    split: Split, which: str, max_users: int | None = None, seed: int = 0
) -> RankingTask:
    """The full-ranking task of the ``which`` split: every user with held-out interactions
    (at most ``max_users``, sampled with ``seed``), all their held-out items relevant; when
    testing, the user's validation items are known history and leave the candidates."""
    held = split.val if which == "val" else split.test
    users = capped_users(np.unique(held.row), max_users, seed, RANKING_STREAM)
    rel_ptr, rel = _grouped(held.row, held.col, users)
    if which == "test":
        ex_ptr, ex = _grouped(split.val.row, split.val.col, users)
    else:
        ex_ptr, ex = np.zeros(len(users) + 1, np.int64), np.zeros(0, np.int64)
    return RankingTask(users.astype(np.int64), rel_ptr, rel, ex_ptr, ex)


#: Relevant items of a user up to which :func:`rank_users` counts the candidates scored above
#: each one by comparisons (one pass over the items each) instead of sorting the user's scores.
COUNT_LIMIT = 32


def _scored_above(row: np.ndarray, rel: IntArray, s_rel: np.ndarray) -> IntArray:
    """For each relevant item (scores ``s_rel = row[rel]``), the non-relevant items scored at
    least as high, a ``NaN`` score counting as the highest (as ``np.sort`` places it)."""
    if len(rel) > COUNT_LIMIT:
        is_rel = np.zeros(len(row), dtype=bool)
        is_rel[rel] = True
        others = np.sort(row[~is_rel])
        return len(others) - np.searchsorted(others, s_rel, "left")
    distinct = row[np.unique(rel)]
    at_least = np.count_nonzero(row >= s_rel[:, None], axis=1)
    relevant_at_least = np.count_nonzero(distinct >= s_rel[:, None], axis=1)
    nan_others = np.count_nonzero(np.isnan(row)) - np.count_nonzero(np.isnan(distinct))
    return (at_least - relevant_at_least + nan_others).astype(np.int64)


def rank_users(
    scorer: Scorer, split: Split, task: RankingTask, ks: tuple[int, ...], batch_size: int = 256
) -> dict[str, FloatVector]:
    """Per-user top-K metrics (and MRR) of :func:`ranking_per_user` for ``task``.

    Ranks are pessimistic: a relevant item is placed after every non-relevant item with the
    same score; relevant items tied with each other keep item-id order. Each relevant item's
    rank counts the non-relevant candidates scored at least as high plus the relevant items
    placed before it."""
    width = max(ks)
    n = len(task)
    hits = np.zeros((n, width), dtype=bool)
    n_rel = np.zeros(n, dtype=np.int64)
    first = np.full(n, np.inf)
    for s in _batches(n, batch_size):
        scores = scorer.all_items(task.users[s])
        # each user's scores are copied into one buffer and masked there (the scorer's array
        # stays as it was), in the scorer's precision: the comparisons need no more
        row = np.empty(scores.shape[1], np.promote_types(scores.dtype, np.float32))
        for r in range(scores.shape[0]):
            b = s.start + r
            row[:] = scores[r]
            row[split.user_history(int(task.users[b]))] = -np.inf
            row[task.exclude_of(b)] = -np.inf
            rel = task.relevant_of(b)
            if not len(rel):
                continue
            s_rel = row[rel]
            above = _scored_above(row, rel, s_rel)
            order = np.lexsort((rel, -s_rel))
            before = np.empty(len(rel), dtype=np.int64)
            before[order] = np.arange(len(rel))
            ranks = above + before + 1
            n_rel[b] = len(rel)
            first[b] = ranks.min()
            top = ranks[ranks <= width]
            hits[b, top - 1] = True
    return ranking_per_user(hits, n_rel, first, ks)


def full_ranking(
    scorer: Scorer,
    split: Split,
    users: IntArray,
    targets: IntArray,
    extra_seen: IntArray | None,
    ks: tuple[int, ...],
    batch_size: int = 256,
) -> dict[str, float]:
    """Top-K metrics of each target ranked against all items the user has not seen in
    training (``extra_seen[b]``, e.g. the validation item, is excluded too when given)."""
    if len(users) == 0:
        return {}
    ranks = np.empty(len(users), dtype=np.float64)
    for s in _batches(len(users), batch_size):
        scores = scorer.all_items(users[s]).astype(np.float64)
        for r, u in enumerate(users[s]):
            scores[r, split.user_history(int(u))] = -np.inf
        if extra_seen is not None:
            scores[np.arange(scores.shape[0]), extra_seen[s]] = -np.inf
        t = scores[np.arange(scores.shape[0]), targets[s]]
        ranks[s] = 1.0 + (scores >= t[:, None]).sum(1) - 1.0
    return _report_from_ranks(ranks, ks)


def query_suggestion(
    scorer: Scorer,
    split: Split,
    which: str,
    ks: tuple[int, ...],
    max_users: int | None = None,
    seed: int = 0,
    batch_size: int = 256,
) -> dict[str, float]:
    """MRR and NDCG@K of each user's held-out searched query among all queries not searched in
    training; empty when the split has no held-out searches or the scorer cannot rank queries.
    Like :func:`ranking_task`, at most ``max_users`` users' searches are ranked (sampled with
    ``seed``): each costs a score for every query, so all of a large graph's held-out
    searches would cost users × queries."""
    held = split.val_search if which == "val" else split.test_search
    if len(held) == 0 or split.n_queries == 0:
        return {}
    users = np.unique(held.row)
    capped = capped_users(users, max_users, seed, QUERY_STREAM)
    if len(capped) < len(users):
        held = held.subset(in_sorted(held.row, capped))
    train = split.train_search
    seen: dict[int, list[int]] = {}
    for u, q in zip(train.row.tolist(), train.col.tolist(), strict=True):
        seen.setdefault(u, []).append(q)
    ranks = np.empty(len(held), dtype=np.float64)
    for s in _batches(len(held), batch_size):
        scores = scorer.queries(held.row[s])
        if scores is None:
            return {}
        scores = scores.astype(np.float64)
        for r, u in enumerate(held.row[s]):
            scores[r, seen.get(int(u), [])] = -np.inf
        t = scores[np.arange(scores.shape[0]), held.col[s]]
        ranks[s] = (scores >= t[:, None]).sum(1)
    rep = _report_from_ranks(ranks, ks)
    out = {"mrr": rep["mrr"]}
    out.update({f"ndcg@{k}": rep[f"ndcg@{k}"] for k in ks})
    return out


ProtocolFn = Callable[..., dict[str, Any]]

#: The protocols by name.
PROTOCOLS: dict[str, ProtocolFn] = {
    "click": click_prediction,
    "full_ranking": full_ranking,
    "sampled_ranking": sampled_ranking,
    "query_suggestion": query_suggestion,
}
