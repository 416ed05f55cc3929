"""Query frequency: items most clicked after the user's (normalised) queries."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from training.data import HAS_TERM, ITEM, LED_TO, QUERY, TERM
from training.dataset import GraphData
from training.models.base import RecModel


class QueryFrequency(RecModel):
    r"""Search-log baseline. Query ids are already normalized by the graph store (one node per
    normalized text). For each query, the item distribution
    :math:`P(i \mid q) \propto n(q \to i)` comes from its ``LED_TO`` counts, falling back to
    term overlap with the item (shared ``HAS_TERM`` terms) when the query led nowhere. A user's
    item scores sum it over their training searches, with a tiny popularity term for users
    without searches:

    .. math::
        s_{ui} = \sum_{q} n(u, q)\, P(i \mid q) + 10^{-6}\log(1 + n_i)

    Queries are ranked for a user by their global search frequency plus the number of terms
    shared with the user's own past queries.

    Args:
        data (GraphData): Training data.

    Shapes:
        - **input:** users :math:`(B,)`, items :math:`(B,)`
        - **output:** scores :math:`(B,)`
    """

    trainable = False
    user_query: Tensor
    query_item: Tensor
    query_pop: Tensor
    query_terms: Tensor
    item_pop: Tensor

    def __init__(self, data: GraphData) -> None:
        super().__init__(data)
        n_u, n_i, n_q = data.n_users, data.n_items, max(data.n_queries, 1)
        self.register_buffer("user_query", torch.zeros(n_u, n_q))
        self.register_buffer("query_item", torch.zeros(n_q, n_i))
        self.register_buffer("query_pop", torch.zeros(n_q))
        self.register_buffer("query_terms", torch.zeros(n_q, 0))
        self.register_buffer("item_pop", torch.zeros(n_i))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for buf in (self.user_query, self.query_item, self.query_pop, self.item_pop):
            buf.zero_()

    def fit_statistics(self, data: GraphData) -> None:
        split, graph = data.split, data.split.graph
        n_i = data.n_items
        n_q = max(data.n_queries, 1)
        # Query ids arrive normalized by the sources (graphstore.sources.text.normalize_query),
        # so each query is its own group.
        group = np.arange(len(graph.ids.get(QUERY, ())), dtype=np.int64)
        n_g = max(len(group), 1)
        led = np.zeros((n_g, n_i), np.float32)
        e = graph.edges.get((QUERY, LED_TO, ITEM))
        if e is not None and e.num_edges:
            np.add.at(led, (group[e.index[0]], e.index[1]), e.weight)
        n_t = data.num_nodes.get(TERM, 0)
        q_terms = np.zeros((n_q, n_t), np.float32)
        i_terms = np.zeros((n_i, n_t), np.float32)
        for src, mat in ((QUERY, q_terms), (ITEM, i_terms)):
            te = graph.edges.get((src, HAS_TERM, TERM))
            if te is not None and te.num_edges:
                mat[te.index[0], te.index[1]] = 1.0
        qi = led[group] if len(group) else np.zeros((n_q, n_i), np.float32)
        empty = qi.sum(1) == 0
        if empty.any() and n_t:
            qi[empty] = q_terms[empty] @ i_terms.T
        qi /= np.maximum(qi.sum(1, keepdims=True), 1e-12)
        uq = np.zeros((data.n_users, n_q), np.float32)
        uq_idx = split.train_search.col
        np.add.at(uq, (split.train_search.row, uq_idx), 1.0)
        pop_g = np.bincount(group[uq_idx], minlength=n_g) if len(group) else np.zeros(1)
        self.user_query.copy_(torch.as_tensor(uq))
        self.query_item.copy_(torch.as_tensor(qi))
        self.query_pop.copy_(torch.as_tensor(np.log1p(pop_g[group] if len(group) else pop_g)))
        self.query_terms = torch.as_tensor(q_terms, device=self.user_query.device)
        counts = np.bincount(split.train.col, minlength=n_i)
        self.item_pop.copy_(torch.as_tensor(np.log1p(counts) * 1e-6, dtype=torch.float32))

    def score_all(self, enc: None, users: Tensor) -> Tensor:
        return self.user_query[users] @ self.query_item + self.item_pop

    def score(self, enc: None, users: Tensor, items: Tensor) -> Tensor:
        return (self.user_query[users] * self.query_item[:, items].t()).sum(-1) + self.item_pop[
            items
        ]

    def score_queries(self, enc: None, users: Tensor, queries: Tensor) -> Tensor | None:
        if self.n_queries == 0:
            return None
        score = self.query_pop[queries]
        if self.query_terms.shape[1]:
            # term overlap per distinct user once ([U', Q]), then gathered per pair: the pairs
            # of a full ranking repeat each user Q times
            uniq, inv = torch.unique(users, return_inverse=True)
            user_terms = (self.user_query[uniq] @ self.query_terms).clamp(max=1.0)
            overlap = user_terms @ self.query_terms.t()
            score = score + overlap[inv, queries]
        return score
