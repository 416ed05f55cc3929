"""The query-conditioned ranking task ("given the user and the query text, rank the items").

This is the task of the Best Buy Kaggle competition: each test row is one search by a user that
ended in a click on one SKU; a model ranks every item for ``(user, query)`` and the row scores
``AP@5`` = ``1 / rank`` of the clicked item when it is in the top 5, else 0 (one relevant item
per row), averaged into **MAP@5**. Ties count against the clicked item, as everywhere in the
harness; a test row whose item, user or query is not in the export still counts (an unknown
item can never be ranked: AP = 0).

``query_task.npz`` in the export directory holds the test rows (written by ``dpgcn evaluate``
from a labelled test file that was *not* exported into the graph):

=====================  ==============  ====================================================
key                    dtype, shape    meaning
=====================  ==============  ====================================================
``test.user``          ``int64 [R]``   User row of the export, ``-1`` when unknown
``test.query``         ``int64 [R]``   Query row (normalised text), ``-1`` when unknown
``test.term_indptr``   ``int64 [R+1]`` CSR over ``test.term_index``
``test.term_index``    ``int64 [T]``   Term rows of the query's terms (known terms only)
``test.item``          ``int64 [R]``   clicked Item row, ``-1`` when not in the export
``test.time``          ``float64 [R]`` epoch seconds of the search, ``NaN`` when unknown
                                       (optional: older files have no time)
=====================  ==============  ====================================================

Validation rows (for choosing a blend weight) come from the leave-one-out split itself: each
user's held-out validation search paired with their held-out validation click; the one
``LED_TO`` count that click added is taken out of the query statistics for that row.

Scorers (all from training-split statistics and vectors only):

* **popularity**: :math:`\\log(1 + n_i)`, training clicks.
* **query frequency**: :math:`P(i \\mid q) \\propto n(q \\to i)` (``LED_TO`` counts) when the
  query is known and led somewhere; otherwise the Jaccard-weighted mix over the training
  queries sharing a term, :math:`\\sum_{q'} J(q, q') P(i \\mid q')`; ties broken by the item's
  term overlap with the query, then popularity.
* **graph models** (any dot-product model: DP-GCN, LightGCN, …): the query as a pseudo-user,
  :math:`\\mathbf{v}_q` = mean vector of the training users who searched :math:`q` (one hop
  back along ``SEARCHED``; for an unseen query the Jaccard-weighted mean over similar known
  queries), added to the user's own vector when the user is known:
  :math:`s_{uqi} = \\langle \\mathbf{u} + \\mathbf{v}_q, \\mathbf{i} \\rangle`.
* **blend**: :math:`\\log(\\text{qf} + 10^{-6}) + \\lambda \\cdot z(s_{uqi})` (model score
  standardised per row), :math:`\\lambda` chosen on the validation rows from a fixed grid;
  :math:`\\lambda = 0` is query frequency itself.
* **smoothed query likelihood** (reported on the query-frequency row as
  ``competition_smoothed_*``; :mod:`training.query_smoothing` has the formula): query
  frequency backed off to the query's terms (Dirichlet), weighted towards clicks near the
  search time, with the item's popularity at that time and a discount on items the user
  already clicked. Its five parameters are chosen on **held-out training events** (every
  search → click of the export, its own click taken out of the counts; up to 10,000), which
  are far more than the validation rows above and, for counts, leak nothing. It uses the
  export's whole log, so it depends on no seed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from graphstore.export_format import QUERY_TASK_FILE, read_query_task
from training.data import HAS_TERM, ITEM, LED_TO, QUERY, TERM, IntArray, read_contract
from training.errors import ExportFormatError
from training.metrics import bootstrap_ci, paired_bootstrap
from training.protocols import EmbeddingScorer
from training.query_rows import QueryRows
from training.query_smoothing import (
    SmoothedQueryScorer,
    SmoothingParams,
    choose_params,
    heldout_event_rows,
)
from training.splits import Split

logger = logging.getLogger(__name__)

#: Blend weights tried on the validation rows.
LAMBDA_GRID = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
K = 5
#: Prefix of this task's metrics in results (``map@5`` alone is the full-ranking MAP@5 of the
#: leave-one-out protocol).
PREFIX = "competition_"
#: Rows scored at once.
CHUNK = 1024

FloatMatrix = NDArray[np.float64]


def load_query_rows(export_dir: Path, split: Split) -> QueryRows | None:
    """The test rows of ``export_dir``'s ``query_task.npz`` (``None`` when there is none),
    read through the export contract (:func:`graphstore.export_format.read_query_task`)."""
    path = Path(export_dir) / QUERY_TASK_FILE
    rows = read_contract(read_query_task, export_dir)
    if rows is None:
        return None
    n_terms = split.graph.num_nodes(TERM)
    ok = (
        (rows.user < split.n_users).all()
        and (rows.query < split.n_queries).all()
        and (rows.item < split.n_items).all()
        and (len(rows.term_index) == 0 or rows.term_index.max() < n_terms)
    )
    if not ok:
        raise ExportFormatError(f"{path}: arrays are inconsistent with the export")
    return QueryRows(
        rows.user,
        rows.query,
        rows.term_indptr,
        rows.term_index,
        rows.item,
        np.zeros(len(rows)),
        rows.time,
    )


def validation_rows(split: Split) -> QueryRows:
    """Each user's held-out validation search paired with their held-out validation click."""
    click = dict(zip(split.val.row.tolist(), split.val.col.tolist(), strict=True))
    users, queries, items, times = [], [], [], []
    vs = split.val_search
    for u, q, t in zip(vs.row.tolist(), vs.col.tolist(), vs.time.tolist(), strict=True):
        if u in click:
            users.append(u)
            queries.append(q)
            items.append(click[u])
            times.append(t)
    q_arr = np.asarray(queries, dtype=np.int64)
    terms = _query_terms(split)
    lists = [terms[q] for q in q_arr.tolist()]
    indptr = np.concatenate([[0], np.cumsum([len(t) for t in lists])]).astype(np.int64)
    index = np.concatenate(lists).astype(np.int64) if lists else np.zeros(0, np.int64)
    return QueryRows(
        np.asarray(users, dtype=np.int64),
        q_arr,
        indptr,
        index,
        np.asarray(items, dtype=np.int64),
        np.ones(len(users)),
        np.asarray(times, dtype=np.float64),
    )


def _query_terms(split: Split) -> list[IntArray]:
    e = split.graph.edges.get((QUERY, HAS_TERM, TERM))
    out: list[IntArray] = [np.zeros(0, np.int64) for _ in range(split.n_queries)]
    if e is not None and e.num_edges:
        order = np.argsort(e.index[0], kind="stable")
        q, t = e.index[0][order], e.index[1][order]
        bounds = np.searchsorted(q, np.arange(split.n_queries + 1))
        out = [t[bounds[j] : bounds[j + 1]] for j in range(split.n_queries)]
    return out


@dataclass
class Smoothed:
    """The smoothed scorer's choice and scores (:meth:`QueryTask.smoothed`)."""

    params: SmoothingParams
    heldout: QueryRows
    heldout_map: float
    s_val: FloatMatrix
    s_test: FloatMatrix


class QueryTask:
    """Training-split statistics shared by the scorers of one split."""

    def __init__(self, split: Split) -> None:
        self.split = split
        n_q, n_i = split.n_queries, split.n_items
        self.n_terms = split.graph.num_nodes(TERM)
        led = np.zeros((max(n_q, 1), n_i), np.float64)
        e = split.train_edges.get((QUERY, LED_TO, ITEM))
        if e is not None and e.num_edges:
            np.add.at(led, (e.index[0], e.index[1]), e.weight.astype(np.float64))
        self.led = led[:n_q]
        self.query_terms = np.zeros((n_q, max(self.n_terms, 1)), np.float64)
        qt = split.graph.edges.get((QUERY, HAS_TERM, TERM))
        if qt is not None and qt.num_edges:
            self.query_terms[qt.index[0], qt.index[1]] = 1.0
        self.query_terms = self.query_terms[:, : self.n_terms]
        self.item_terms = np.zeros((n_i, max(self.n_terms, 1)), np.float64)
        it = split.graph.edges.get((ITEM, HAS_TERM, TERM))
        if it is not None and it.num_edges:
            self.item_terms[it.index[0], it.index[1]] = 1.0
        self.item_terms = self.item_terms[:, : self.n_terms]
        self.log_pop = np.log1p(np.bincount(split.train.col, minlength=n_i).astype(np.float64))
        self.searchers = split.train_search
        self._smoothed: dict[tuple[int, int], Smoothed | None] = {}

    def smoothed(self, val: QueryRows, test: QueryRows) -> Smoothed | None:
        """The smoothed query likelihood on ``val`` and ``test`` with its parameters chosen
        on held-out training events (computed once per pair of row sets; ``None`` when the
        export has no search → click event)."""
        key = (id(val), id(test))
        if key not in self._smoothed:
            scorer = SmoothedQueryScorer(self.split.graph)
            heldout = heldout_event_rows(scorer, _query_terms(self.split))
            if not len(heldout):
                self._smoothed[key] = None
            else:
                params, value = choose_params(scorer, heldout, map_at)
                self._smoothed[key] = Smoothed(
                    params, heldout, value, scorer.score(val, params), scorer.score(test, params)
                )
        return self._smoothed[key]

    # ------------------------------------------------------------------ shared pieces
    def _similar_queries(self, rows: QueryRows) -> FloatMatrix:
        """Jaccard similarity ``[R, Q]`` of each row's terms with every training query's."""
        terms = rows.term_matrix(self.n_terms)
        shared = terms @ self.query_terms.T
        union = terms.sum(1)[:, None] + self.query_terms.sum(1)[None, :] - shared
        return np.where(union > 0, shared / np.maximum(union, 1e-12), 0.0)

    def _led_rows(self, rows: QueryRows, r: slice) -> FloatMatrix:
        """``LED_TO`` counts of each row's query, minus the row's own correction."""
        q = rows.query[r]
        out = np.where((q >= 0)[:, None], self.led[np.maximum(q, 0)], 0.0)
        idx = np.flatnonzero((q >= 0) & (rows.led_correction[r] > 0) & (rows.item[r] >= 0))
        if len(idx):
            cols = rows.item[r][idx]
            out[idx, cols] = np.maximum(out[idx, cols] - rows.led_correction[r][idx], 0.0)
        return out

    # ------------------------------------------------------------------ scorers
    def popularity(self, rows: QueryRows) -> FloatMatrix:
        return np.broadcast_to(self.log_pop, (len(rows), len(self.log_pop))).copy()

    def query_frequency(self, rows: QueryRows) -> FloatMatrix:
        """Query-frequency scores ``[R, I]`` (in chunks of rows; see :meth:`_query_frequency`)."""
        return _chunked(self._query_frequency, rows)

    def _query_frequency(self, rows: QueryRows) -> FloatMatrix:
        """``P(i | q)`` (known query that led somewhere) or the Jaccard mix over similar
        training queries, plus tie-breakers (item–query term overlap, then popularity)."""
        prob = self.led / np.maximum(self.led.sum(1, keepdims=True), 1e-12)
        sim = self._similar_queries(rows)
        terms = rows.term_matrix(self.n_terms)
        overlap = terms @ self.item_terms.T
        overlap /= np.maximum(terms.sum(1, keepdims=True), 1.0)
        own = self._led_rows(rows, slice(None))
        own_total = own.sum(1, keepdims=True)
        direct = own / np.maximum(own_total, 1e-12)
        # the mix over similar queries, with each row's own query corrected
        mix = sim @ prob
        q = rows.query
        known = np.flatnonzero(q >= 0)
        if len(known):
            mix[known] += sim[known, q[known], None] * (direct[known] - prob[q[known]])
        mix /= np.maximum(mix.sum(1, keepdims=True), 1e-12)
        base = np.where(own_total > 0, direct, mix)
        return base + 1e-3 * overlap + 1e-6 * self.log_pop[None, :]

    def pseudo_queries(self, rows: QueryRows, user: np.ndarray) -> FloatMatrix:
        """``v_q`` per row (in chunks of rows; see :meth:`_pseudo_queries`)."""
        return _chunked(lambda sub: self._pseudo_queries(sub, user), rows)

    def _pseudo_queries(self, rows: QueryRows, user: np.ndarray) -> FloatMatrix:
        """``v_q`` per row: mean training-searcher vector of the query (Jaccard-weighted over
        similar known queries when the query has no training searcher)."""
        n_q, dim = self.split.n_queries, user.shape[1]
        sums = np.zeros((max(n_q, 1), dim), np.float64)
        np.add.at(sums, self.searchers.col, user[self.searchers.row].astype(np.float64))
        counts = np.bincount(self.searchers.col, minlength=n_q).astype(np.float64)
        mean = sums[:n_q] / np.maximum(counts, 1.0)[:, None]
        q = rows.query
        has = (q >= 0) & (counts[np.maximum(q, 0)] > 0) if n_q else np.zeros(len(rows), bool)
        out = np.zeros((len(rows), dim), np.float64)
        out[has] = mean[q[has]]
        rest = np.flatnonzero(~has)
        if len(rest) and n_q:
            w = self._similar_queries(take(rows, rest)) * (counts > 0)[None, :]
            out[rest] = (w @ mean) / np.maximum(w.sum(1, keepdims=True), 1e-12)
        return out

    def graph_model(self, rows: QueryRows, scorer: EmbeddingScorer) -> FloatMatrix:
        """``<u + v_q, i>`` from a dot-product model's vectors (``u = 0`` for unknown users)."""
        user = scorer.user.astype(np.float64)
        vec = self.pseudo_queries(rows, user)
        known = rows.user >= 0
        vec[known] += user[rows.user[known]]
        return vec @ scorer.item.astype(np.float64).T


def take(rows: QueryRows, idx: IntArray) -> QueryRows:
    """The rows ``idx`` of ``rows``."""
    lists = [rows.term_index[rows.term_indptr[r] : rows.term_indptr[r + 1]] for r in idx.tolist()]
    indptr = np.concatenate([[0], np.cumsum([len(t) for t in lists])]).astype(np.int64)
    index = np.concatenate(lists).astype(np.int64) if lists else np.zeros(0, np.int64)
    return QueryRows(
        rows.user[idx],
        rows.query[idx],
        indptr,
        index,
        rows.item[idx],
        rows.led_correction[idx],
        None if rows.time is None else rows.time[idx],
    )


def _chunked(fn: Callable[[QueryRows], FloatMatrix], rows: QueryRows) -> FloatMatrix:
    """``fn`` over chunks of rows (the ``[rows, queries]`` similarity matrix stays small)."""
    parts = [
        fn(take(rows, np.arange(a, min(a + CHUNK, len(rows))))) for a in range(0, len(rows), CHUNK)
    ]
    return np.concatenate(parts) if parts else fn(rows)


def average_precision_at(scores: FloatMatrix, targets: IntArray, k: int = K) -> FloatMatrix:
    """Per row ``1 / rank`` of the target if ``rank <= k`` else 0 (one relevant item; ties
    count against it; target ``-1`` scores 0)."""
    ok = targets >= 0
    t = scores[np.arange(len(scores)), np.maximum(targets, 0)]
    rank = (scores > t[:, None]).sum(1) + (scores == t[:, None]).sum(1)  # pessimistic
    ap = np.where(rank <= k, 1.0 / np.maximum(rank, 1), 0.0)
    return np.where(ok, ap, 0.0)


def map_at(scores: FloatMatrix, targets: IntArray, k: int = K) -> float:
    return float(average_precision_at(scores, targets, k).mean()) if len(targets) else math.nan


def blend(qf: FloatMatrix, model: FloatMatrix, lam: float) -> FloatMatrix:
    """``log(qf + 1e-6) + λ · z(model)`` (model scores standardised per row)."""
    z = (model - model.mean(1, keepdims=True)) / np.maximum(model.std(1, keepdims=True), 1e-12)
    out: FloatMatrix = np.log(qf + 1e-6) + lam * z
    return out


def query_task_metrics(
    task: QueryTask,
    val: QueryRows,
    test: QueryRows,
    name: str,
    scorer: object,
    qf_val: FloatMatrix,
    qf_test: FloatMatrix,
) -> dict[str, float]:
    """MAP@5 of model ``name`` on the test rows (and validation rows), plus, for dot-product
    models, the query-frequency blend with λ chosen on validation. Keys start with
    ``competition_`` (``competition_map@5``, ``competition_blend_map@5``, …)."""
    out: dict[str, float] = {}
    if name == "popularity":
        s_val, s_test = task.popularity(val), task.popularity(test)
    elif name == "query_frequency":
        s_val, s_test = qf_val, qf_test
    elif isinstance(scorer, EmbeddingScorer):
        s_val, s_test = task.graph_model(val, scorer), task.graph_model(test, scorer)
    else:
        return out
    out[f"{PREFIX}map@5"] = map_at(s_test, test.item)
    out[f"{PREFIX}val_map@5"] = map_at(s_val, val.item)
    if name == "query_frequency":
        out.update(smoothed_metrics(task, val, test, qf_test))
    if isinstance(scorer, EmbeddingScorer) and name not in ("popularity", "query_frequency"):
        out.update(_blend_metrics("blend", qf_val, qf_test, s_val, s_test, val, test))
        smoothed = task.smoothed(val, test)
        if smoothed is not None:
            base_val, base_test = smoothed.s_val, smoothed.s_test
            out.update(
                _blend_metrics("smoothed_blend", base_val, base_test, s_val, s_test, val, test)
            )
    return out


def _blend_metrics(
    key: str,
    base_val: FloatMatrix,
    base_test: FloatMatrix,
    s_val: FloatMatrix,
    s_test: FloatMatrix,
    val: QueryRows,
    test: QueryRows,
) -> dict[str, float]:
    """``competition_<key>_map@5`` of :func:`blend` with λ chosen on the validation rows."""
    out: dict[str, float] = {}
    best, best_lam = -math.inf, 0.0
    for lam in LAMBDA_GRID:
        value = map_at(blend(base_val, s_val, lam), val.item)
        out[f"{PREFIX}{key}_val_map@5_lambda={lam:g}"] = value
        if value > best + 1e-9:
            best, best_lam = value, lam
    out[f"{PREFIX}{key}_lambda"] = best_lam
    out[f"{PREFIX}{key}_val_map@5"] = best if math.isfinite(best) else math.nan
    out[f"{PREFIX}{key}_map@5"] = map_at(blend(base_test, s_test, best_lam), test.item)
    return out


def smoothed_metrics(
    task: QueryTask, val: QueryRows, test: QueryRows, qf_test: FloatMatrix
) -> dict[str, float]:
    """The smoothed query likelihood (:mod:`training.query_smoothing`): its parameters chosen
    on held-out training events, then MAP@5 on the test rows (``competition_smoothed_map@5``,
    with a 95 % bootstrap interval over test rows ``…_lo`` / ``…_hi``, and the paired
    bootstrap of its gain over query frequency ``…_smoothed_gain``, ``…_gain_lo``,
    ``…_gain_hi``, ``…_gain_p``), on the validation rows (``…_smoothed_val_map@5``) and on
    the held-out events, beside query frequency on the same events (``…_heldout_map@5``).
    The chosen parameters are recorded as ``competition_smoothed_<name>``
    (``bandwidth_days`` 0: time not used)."""
    sm = task.smoothed(val, test)
    if sm is None:
        return {}
    ap = average_precision_at(sm.s_test, test.item)
    lo, hi = bootstrap_ci(ap)
    gain = paired_bootstrap(ap, average_precision_at(qf_test, test.item))
    out = {
        f"{PREFIX}smoothed_map@5": float(ap.mean()) if len(ap) else math.nan,
        f"{PREFIX}smoothed_map@5_lo": lo,
        f"{PREFIX}smoothed_map@5_hi": hi,
        f"{PREFIX}smoothed_gain": gain["diff"],
        f"{PREFIX}smoothed_gain_lo": gain["lo"],
        f"{PREFIX}smoothed_gain_hi": gain["hi"],
        f"{PREFIX}smoothed_gain_p": gain["p"],
        f"{PREFIX}smoothed_val_map@5": map_at(sm.s_val, val.item),
        f"{PREFIX}smoothed_heldout_map@5": sm.heldout_map,
        f"{PREFIX}heldout_map@5": map_at(task.query_frequency(sm.heldout), sm.heldout.item),
    }
    for key, v in asdict(sm.params).items():
        out[f"{PREFIX}smoothed_{key}"] = float(v) if v is not None else 0.0
    return out


def coverage(rows: QueryRows) -> dict[str, int]:
    """How many rows have a known user, query, item."""
    return {
        "rows": len(rows),
        "known_user": int((rows.user >= 0).sum()),
        "known_query": int((rows.query >= 0).sum()),
        "with_terms": int((np.diff(rows.term_indptr) > 0).sum()),
        "known_item": int((rows.item >= 0).sum()),
    }
