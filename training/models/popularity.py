"""Popularity: every user gets the most interacted-with items; with a category back-off, also
the items that have no training interaction yet."""

from __future__ import annotations

import torch
from torch import Tensor

from training.dataset import GraphData
from training.models.base import RecModel
from training.sparse import Adjacency, spmm


class Popularity(RecModel):
    r"""Non-personalised baseline: :math:`s_{ui} = \log(1 + n_i)` with :math:`n_i` the number of
    training users who interacted with item :math:`i`; queries likewise by training searches.

    Args:
        data (GraphData): Training data.

    Shapes:
        - **input:** users :math:`(B,)`, items :math:`(B,)`
        - **output:** scores :math:`(B,)`
    """

    trainable = False
    item_score: Tensor
    query_score: Tensor

    def __init__(self, data: GraphData) -> None:
        super().__init__(data)
        self.register_buffer("item_score", torch.zeros(data.n_items))
        self.register_buffer("query_score", torch.zeros(max(data.n_queries, 0)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.item_score.zero_()
        self.query_score.zero_()

    def fit_statistics(self, data: GraphData) -> None:
        split = data.split
        counts = torch.bincount(torch.as_tensor(split.train.col), minlength=data.n_items).float()
        self.item_score.copy_(counts.log1p())
        if data.n_queries:
            q = torch.bincount(torch.as_tensor(split.train_search.col), minlength=data.n_queries)
            self.query_score.copy_(q.float().log1p())

    def score(self, enc: None, users: Tensor, items: Tensor) -> Tensor:
        return self.item_score[items]

    def score_all(self, enc: None, users: Tensor) -> Tensor:
        return self.item_score.unsqueeze(0).expand(len(users), -1)

    def score_queries(self, enc: None, users: Tensor, queries: Tensor) -> Tensor | None:
        return self.query_score[queries] if self.n_queries else None


class CategoryPopularity(Popularity):
    r"""Popularity that can score an item without training interactions: such an item gets the
    popularity its categories' trained items have on average, an empirical-Bayes prior for
    its count (the item's category is what a shop knows of a new product). With
    :math:`n_i` the training users of item :math:`i`, :math:`T` the items with
    :math:`n_i > 0` and :math:`C(i)` the categories of item :math:`i`:

    .. math::
        s_{ui} = \begin{cases} \log(1 + n_i) & i \in T \\
        \frac{1}{|C'(i)|}\sum_{c \in C'(i)} \overline{\log(1 + n_j)}_{j \in T \cap c}
        & \text{otherwise} \end{cases}

    with :math:`C'(i)` the categories of :math:`i` that hold a trained item; an item with none
    gets the mean over :math:`T`. It is the count baseline of the cold-item protocol
    (plain :class:`Popularity` ranks every cold item at zero: n/a there).
    """

    inductive = True

    def __init__(self, data: GraphData) -> None:
        super().__init__(data)
        self.item_categories = data.item_categories

    def fit_statistics(self, data: GraphData) -> None:
        super().fit_statistics(data)
        own = self.item_score
        trained = own > 0
        if not bool(trained.any()):
            return
        prior = torch.full_like(own, float(own[trained].mean()))
        items, cats = self.item_categories.to(own.device)
        warm = trained[items]
        if bool(warm.any()):
            n_items, n_cat = len(own), int(cats.max()) + 1
            # mean over each category's trained items, then over each item's categories that
            # hold one: two mean-aggregation products, as the behaviour models' category path
            to_cat = Adjacency.from_edge_index(
                torch.stack([items[warm], cats[warm]]), n_items, n_cat, "mean"
            )
            cat_mean = spmm(to_cat, own.unsqueeze(1))
            has = torch.zeros(n_cat, dtype=torch.bool, device=own.device)
            keep = has.index_fill_(0, cats[warm], True)[cats]
            to_item = Adjacency.from_edge_index(
                torch.stack([cats[keep], items[keep]]), n_cat, n_items, "mean"
            )
            known = torch.zeros_like(trained).index_fill_(0, items[keep], True)
            prior = torch.where(known, spmm(to_item, cat_mean).squeeze(1), prior)
        self.item_score.copy_(torch.where(trained, own, prior))
