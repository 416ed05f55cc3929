r"""Smoothed query likelihood: the count-based scorer of the query-conditioned task.

Query frequency (:mod:`training.query_task`) ranks items by :math:`P(i \mid q)`, the share of
the query's ``LED_TO`` clicks. This scorer keeps that estimate where a query has many clicks
and backs it off, level by level, where it has few, the way a language model for retrieval is
smoothed (Dirichlet priors: Zhai & Lafferty, SIGIR 2001). Queries arrive already normalised by
the sources (:func:`graphstore.sources.text.normalize_query`: lower case, stop-words out,
stems, unique terms sorted), so one ``Query`` node stands for all its spelling variants; its terms
are its ``HAS_TERM`` edges. For a request ``(u, q, t)`` (user, query, time of the search):

1. **Term level.** Each term :math:`w` has the click distribution of every training query
   that contains it, :math:`c(w, i) = \sum_{q' \ni w} c(q', i)`. The query's term model is
   their mean over its known terms, backed off to item popularity
   :math:`P(i) = (n_i + 1) / (N + |I|)`:

   .. math::
       P_T(i \mid q) = (1 - \epsilon)\,\frac{1}{|W_q|} \sum_{w \in W_q}
       \frac{c(w, i)}{c(w)} + \epsilon\, P(i)

   (:math:`P_T = P(i)` when no term of the query is known).
2. **Query level** (Dirichlet): the query's own counts, with :math:`\mu` pseudo-clicks from
   its term model, so a query seen once leans on its terms and one seen a thousand times
   does not:

   .. math:: P_1(i \mid q) = \frac{c(q, i) + \mu\, P_T(i \mid q)}{c(q) + \mu}

3. **Time level** (Dirichlet again): the same counts, each click weighted by how close it
   was to the search time, :math:`c_h(q, i; t) = \sum_{e:\, q_e = q,\, i_e = i}
   e^{-|t - t_e| / h}` (:math:`h` in days), backed off to :math:`P_1`; and the item's
   popularity around :math:`t` against its overall popularity:

   .. math::
       P_2(i \mid q, t) = \frac{c_h(q, i; t) + \mu_t\, P_1(i \mid q)}{c_h(q; t) + \mu_t},
       \qquad
       r_h(i, t) = \frac{(n_h(i; t) + 1) / (N_h(t) + |I|)}{P(i)}

   with :math:`n_h(i; t) = \sum_{e:\, i_e = i} e^{-|t - t_e| / h}` over every click.
   Catalogues with releases and seasons (a new game, a new phone) move their clicks in time
   at the same query text; without a time (``NaN``) this level is skipped
   (:math:`P_2 = P_1`, :math:`r = 1`).
4. **The user's own clicks**: items the user already clicked get a factor
   :math:`1 - \delta` (a user who searches again is looking for something else; with
   :math:`\delta < 0` it would be a re-click boost).

.. math:: s_{uqti} = P_2(i \mid q, t)\; r_h(i, t)^{\beta}\; (1 - \delta\,[i \in H_u])

The parameters :math:`(\mu, h, \mu_t, \beta, \delta)` are chosen on **held-out training
events** (:func:`heldout_event_rows`): each search → click of the export, paired by time,
scored with its own click taken out of every count above (a leave-one-out jackknife; exact
for counts, so no test row and no refit is needed). Every count comes from the export's whole
log, so the scorer and its choice depend on no split seed. The click events come from
:func:`pair_search_events`: each user → item interaction is paired with the same user's
latest search at or before it (the first later one when there is none).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from training.data import (
    HAS_TERM,
    ITEM,
    LED_TO,
    QUERY,
    SEARCHED,
    TERM,
    USER,
    ExportGraph,
    IntArray,
    interaction_edge_types,
)
from training.query_rows import QueryRows

logger = logging.getLogger(__name__)

FloatMatrix = NDArray[np.float64]
FloatVector = NDArray[np.float64]
DAY = 86400.0
#: At most this many held-out events choose the parameters (a fixed sample, seed 0).
HELDOUT_EVENTS = 10_000
#: Rows scored at once (bounds the ``[rows, time bins]`` kernel matrix).
CHUNK = 2048


@dataclass(frozen=True)
class SmoothingParams:
    """The scorer's parameters (module docstring); ``bandwidth_days=None`` turns time off."""

    mu: float = 5.0
    epsilon: float = 0.01
    bandwidth_days: float | None = None
    mu_time: float = 2.0
    beta: float = 0.0
    discount: float = 0.0


#: Values tried for each parameter, in this order, by :func:`choose_params`.
GRID: dict[str, tuple[float | None, ...]] = {
    "mu": (0.5, 2.0, 5.0, 20.0),
    "bandwidth_days": (None, 1.0, 3.0, 7.0, 14.0),
    "mu_time": (0.5, 2.0, 5.0),
    "beta": (0.0, 0.25, 0.5, 1.0),
    "discount": (0.0, 0.5, 0.9),
}


@dataclass
class SearchEvents:
    """Search → click events: who searched which query at what time, and what they clicked."""

    user: IntArray
    query: IntArray
    item: IntArray
    time: FloatVector

    def __len__(self) -> int:
        return len(self.user)


def pair_search_events(graph: ExportGraph) -> SearchEvents:
    """Each user → item interaction paired with the same user's latest search at or before it
    (else their first later search); interactions of users without searches are dropped.
    The event's time is the search's."""
    s = graph.edges.get((USER, SEARCHED, QUERY))
    clicks = [graph.edges[et] for et in interaction_edge_types(graph)]
    if s is None or not s.num_edges or not clicks:
        none = np.zeros(0, np.int64)
        return SearchEvents(none, none, none, np.zeros(0))
    c_user = np.concatenate([c.index[0] for c in clicks])
    c_item = np.concatenate([c.index[1] for c in clicks])
    c_time = np.concatenate([c.time for c in clicks])
    s_time = np.nan_to_num(s.time, nan=-np.inf)
    order = np.lexsort((s_time, s.index[0]))
    s_user, s_query, s_time = s.index[0][order], s.index[1][order], s.time[order]
    start = np.searchsorted(s_user, c_user, side="left")
    end = np.searchsorted(s_user, c_user, side="right")
    has = end > start
    pos = np.zeros(len(c_user), np.int64)
    for k in np.flatnonzero(has).tolist():
        times = np.nan_to_num(s_time[start[k] : end[k]], nan=-np.inf)
        t = c_time[k]
        before = int(np.searchsorted(times, t, side="right")) if not math.isnan(t) else 0
        pos[k] = start[k] + max(before - 1, 0)
    idx = pos[has]
    return SearchEvents(c_user[has], s_query[idx], c_item[has], s_time[idx].astype(np.float64))


class SmoothedQueryScorer:
    """The counts of one export's search log and the scores of the module docstring."""

    def __init__(self, graph: ExportGraph, events: SearchEvents | None = None) -> None:
        n_q, n_i = graph.num_nodes(QUERY), graph.num_nodes(ITEM)
        n_t = graph.num_nodes(TERM)
        self.n_items = n_i
        self.led = np.zeros((n_q, n_i), np.float64)
        e = graph.edges.get((QUERY, LED_TO, ITEM))
        if e is not None and e.num_edges:
            np.add.at(self.led, (e.index[0], e.index[1]), e.weight.astype(np.float64))
        self.query_terms = np.zeros((n_q, n_t), np.float64)
        qt = graph.edges.get((QUERY, HAS_TERM, TERM))
        if qt is not None and qt.num_edges:
            self.query_terms[qt.index[0], qt.index[1]] = 1.0
        self.term_item = self.query_terms.T @ self.led  # c(w, i)
        self.term_total = self.term_item.sum(1)  # c(w)
        self.events = events if events is not None else pair_search_events(graph)
        user_parts = [graph.edges[et].index for et in interaction_edge_types(graph)]
        ui = np.concatenate(user_parts, axis=1) if user_parts else np.zeros((2, 0), np.int64)
        self.item_count = np.bincount(ui[1], minlength=n_i).astype(np.float64)
        n_u = graph.num_nodes(USER)
        # each user's clicks per item, as sorted keys user * n_items + item with counts
        keys, counts = np.unique(ui[0] * max(n_i, 1) + ui[1], return_counts=True)
        self._user_keys, self._user_counts = keys, counts.astype(np.float64)
        self.n_users = n_u
        ev = self.events
        self._ev_order = np.argsort(ev.query, kind="stable")
        self._ev_bounds = np.searchsorted(ev.query[self._ev_order], np.arange(n_q + 1))

    # ------------------------------------------------------------------ pieces
    def term_model(self, rows: QueryRows, eps: float) -> FloatMatrix:
        """``P_T(i | q)`` per row, each row's own click (``led_correction``) taken out."""
        terms = rows.term_matrix(self.query_terms.shape[1])
        corr = _own(rows)
        denom = self.term_total[None, :] - corr[:, None] * terms
        weight = np.where((terms > 0) & (denom > 0), 1.0 / np.maximum(denom, 1e-12), 0.0)
        num = weight @ self.term_item
        r = np.flatnonzero(corr > 0)
        num[r, rows.item[r]] -= corr[r] * weight[r].sum(1)
        known = (weight > 0).sum(1)
        mix = np.maximum(num, 0.0) / np.maximum(known, 1)[:, None]
        prior = self.popularity(rows)
        return np.where((known > 0)[:, None], (1 - eps) * mix + eps * prior, prior)

    def popularity(self, rows: QueryRows) -> FloatMatrix:
        """``P(i) = (n_i + 1) / (N + |I|)`` per row (own click out)."""
        counts = np.broadcast_to(self.item_count, (len(rows), self.n_items)).copy()
        _take_out(counts, rows, _own(rows))
        counts = np.maximum(counts, 0.0) + 1.0
        out: FloatMatrix = counts / counts.sum(1, keepdims=True)
        return out

    def query_counts(self, rows: QueryRows) -> FloatMatrix:
        """``c(q, i)`` per row (own click out; zero for an unknown query)."""
        q = rows.query
        out = np.where((q >= 0)[:, None], self.led[np.maximum(q, 0)], 0.0)
        _take_out(out, rows, _own(rows))
        return np.maximum(out, 0.0)

    def time_query_counts(self, rows: QueryRows, h_days: float) -> FloatMatrix:
        """``c_h(q, i; t)`` per row (own click out; zero without a time or a known query)."""
        ev, order, bounds = self.events, self._ev_order, self._ev_bounds
        out = np.zeros((len(rows), self.n_items), np.float64)
        t = _times(rows)
        ok = (rows.query >= 0) & ~np.isnan(t)
        for q in np.unique(rows.query[ok]).tolist():
            r = np.flatnonzero(ok & (rows.query == q))
            e = order[bounds[q] : bounds[q + 1]]
            if not len(e):
                continue
            kernel = np.exp(-np.abs(t[r, None] - ev.time[e][None, :]) / (h_days * DAY))
            onehot = np.zeros((len(e), self.n_items))
            onehot[np.arange(len(e)), ev.item[e]] = 1.0
            out[r] = kernel @ onehot
        own = _own(rows) * ok
        _take_out(out, rows, own)
        return np.maximum(out, 0.0)

    def time_popularity(self, rows: QueryRows, h_days: float) -> FloatMatrix:
        """``(n_h(i; t) + 1) / (N_h(t) + |I|)`` per row (own click out; ``NaN`` rows: ``P(i)``).

        Event times are binned at ``h / 24`` (the kernel changes by < 5 % across a bin)."""
        ev = self.events
        out = self.popularity(rows)
        t = _times(rows)
        ok = np.flatnonzero(~np.isnan(t))
        ev_ok = ~np.isnan(ev.time)
        if not len(ok) or not ev_ok.any():
            return out
        width = h_days * DAY / 24.0
        t0 = float(ev.time[ev_ok].min())
        bins = ((ev.time[ev_ok] - t0) // width).astype(np.int64)
        per_bin = np.zeros((int(bins.max()) + 1, self.n_items))
        np.add.at(per_bin, (bins, ev.item[ev_ok]), 1.0)
        centres = t0 + (np.arange(len(per_bin)) + 0.5) * width
        own = _own(rows)
        for a in range(0, len(ok), CHUNK):
            r = ok[a : a + CHUNK]
            kernel = np.exp(-np.abs(t[r, None] - centres[None, :]) / (h_days * DAY))
            counts = kernel @ per_bin
            # the row's own click sits in the bin of its own time
            own_bin = np.clip(((t[r] - t0) // width).astype(np.int64), 0, len(per_bin) - 1)
            k_own = np.exp(-np.abs(t[r] - centres[own_bin]) / (h_days * DAY))
            sub = np.flatnonzero((own[r] > 0) & (rows.item[r] >= 0))
            counts[sub, rows.item[r][sub]] -= own[r][sub] * k_own[sub]
            counts = np.maximum(counts, 0.0) + 1.0
            out[r] = counts / counts.sum(1, keepdims=True)
        return out

    def clicked_before(self, rows: QueryRows) -> FloatMatrix:
        """``[i in H_u]`` per row: the user's clicks in the export, the row's own taken out."""
        out = np.zeros((len(rows), self.n_items), np.float64)
        n_i = max(self.n_items, 1)
        for r in np.flatnonzero(rows.user >= 0).tolist():
            u = int(rows.user[r])
            lo, hi = np.searchsorted(self._user_keys, [u * n_i, (u + 1) * n_i])
            items = self._user_keys[lo:hi] - u * n_i
            counts = self._user_counts[lo:hi].copy()
            counts[items == rows.item[r]] -= rows.led_correction[r]
            out[r, items[counts > 0]] = 1.0
        return out

    # ------------------------------------------------------------------ scores
    def score(
        self,
        rows: QueryRows,
        params: SmoothingParams,
        cache: dict[object, FloatMatrix] | None = None,
    ) -> FloatMatrix:
        """``s_uqti`` for every row and item ``[R, I]`` (``cache`` keeps the pieces that do
        not depend on ``params``' weights between calls on the same rows)."""
        cache = {} if cache is None else cache

        def piece(key: object, make: object) -> FloatMatrix:
            if key not in cache:
                cache[key] = make()  # type: ignore[operator]
            return cache[key]

        c_q = piece("c_q", lambda: self.query_counts(rows))
        p_t = piece(("p_t", params.epsilon), lambda: self.term_model(rows, params.epsilon))
        p = (c_q + params.mu * p_t) / (c_q.sum(1, keepdims=True) + params.mu)
        h = params.bandwidth_days
        if h is not None:
            c_h = piece(("c_h", h), lambda: self.time_query_counts(rows, h))
            p = (c_h + params.mu_time * p) / (c_h.sum(1, keepdims=True) + params.mu_time)
            if params.beta:
                p_h = piece(("p_h", h), lambda: self.time_popularity(rows, h))
                p_all = piece("p_all", lambda: self.popularity(rows))
                p = p * (p_h / p_all) ** params.beta
        if params.discount:
            seen = piece("seen", lambda: self.clicked_before(rows))
            p = p * (1.0 - params.discount * seen)
        return p


def heldout_event_rows(
    scorer: SmoothedQueryScorer, query_terms: list[IntArray], limit: int = HELDOUT_EVENTS
) -> QueryRows:
    """Search → click events of the export as task rows with their own click to take out
    (``led_correction = 1``): at most ``limit``, a fixed sample (seed 0)."""

    ev = scorer.events
    idx = np.arange(len(ev))
    if len(idx) > limit:
        idx = np.sort(np.random.default_rng(0).choice(len(ev), limit, replace=False))
    lists = [query_terms[q] for q in ev.query[idx].tolist()]
    indptr = np.concatenate([[0], np.cumsum([len(t) for t in lists])]).astype(np.int64)
    index = np.concatenate(lists).astype(np.int64) if lists else np.zeros(0, np.int64)
    return QueryRows(
        ev.user[idx],
        ev.query[idx],
        indptr,
        index,
        ev.item[idx],
        np.ones(len(idx)),
        ev.time[idx].astype(np.float64),
    )


def choose_params(
    scorer: SmoothedQueryScorer,
    rows: QueryRows,
    metric: object,
    sweeps: int = 2,
) -> tuple[SmoothingParams, float]:
    """Coordinate ascent over :data:`GRID` on ``rows`` (``metric(scores, items)`` → float),
    from the defaults, ``sweeps`` passes; a value replaces the current one only if it is
    strictly better. Returns the parameters and their metric."""
    cache: dict[object, FloatMatrix] = {}

    def value(p: SmoothingParams) -> float:
        return float(metric(scorer.score(rows, p, cache), rows.item))  # type: ignore[operator]

    best = SmoothingParams()
    best_value = value(best)
    for _ in range(sweeps):
        changed = False
        for name, values in GRID.items():
            for v in values:
                if v == getattr(best, name):
                    continue
                candidate = replace(best, **{name: v})  # type: ignore[arg-type]
                if candidate.bandwidth_days is None and name in ("mu_time", "beta"):
                    continue  # no effect without time
                got = value(candidate)
                if got > best_value + 1e-9:
                    best, best_value, changed = candidate, got, True
        if not changed:
            break
    logger.info("smoothed query scorer: %s, held-out MAP@5 %.4f", best, best_value)
    return best, best_value


def _own(rows: QueryRows) -> FloatVector:
    """Per row, the click to take out at the row's item (0 when the item is unknown)."""
    return np.where(rows.item >= 0, rows.led_correction, 0.0)


def _times(rows: QueryRows) -> FloatVector:
    return rows.time if rows.time is not None else np.full(len(rows), np.nan)


def _take_out(counts: FloatMatrix, rows: QueryRows, amount: FloatVector) -> None:
    r = np.flatnonzero(amount > 0)
    counts[r, rows.item[r]] -= amount[r]
