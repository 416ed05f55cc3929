"""Popularity: every user gets the most interacted-with items."""

from __future__ import annotations

import torch
from torch import Tensor

from training.dataset import GraphData
from training.models.base import RecModel


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
