"""Shared input layer of the DIN-family baselines (Embedding&MLP, Wide&Deep, PNN, DIN).

As in the DIN paper's base model: a candidate item is its id embedding plus the mean embedding
of its categories; a user is their static profile features (projected to ``D``) and their
behaviour sequence — the last ``L`` training items. No user-id embedding (the base models
represent users by profile and behaviour only).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from training.dataset import GraphData
from training.models.base import rows
from training.sparse import Adjacency, spmm


@dataclass
class BehaviorEncoding:
    #: ``[I + 1, D]`` item vectors; the last row (the padding index) is zero.
    item: Tensor
    #: ``[U, D]`` projected profile features (zeros without features).
    profile: Tensor


class BehaviorInput(nn.Module):
    r"""Item, category and profile embeddings, and the behaviour sequence lookup.

    .. math::
        \mathbf{e}_i = \mathbf{E}^{item}_i + \frac{1}{|C(i)|}\sum_{c \in C(i)} \mathbf{E}^{cat}_c,
        \qquad \mathbf{p}_u = \mathbf{W}\mathbf{s}_u + \mathbf{b}

    Args:
        data (GraphData): Training data (item categories, user features, behaviour sequences).
        dim (int): Embedding size :math:`D`.

    Shapes:
        - **output of** :meth:`behaviour`: history vectors :math:`(B, L, D)` and mask
          :math:`(B, L)` (the candidate item itself is masked out of its own history).
    """

    def __init__(self, data: GraphData, dim: int) -> None:
        super().__init__()
        self.n_items = data.n_items
        self.dim = dim
        self.feature_dim = data.user_feature_dim
        self.history = data.history
        self.user_x = data.user_x
        self.item_emb = nn.Embedding(data.n_items + 1, dim, padding_idx=data.n_items)
        n_cat = data.n_categories
        self.cat_emb = nn.Embedding(max(n_cat, 1), dim)
        self.cat_adj: Adjacency | None = None
        if n_cat and data.item_categories.numel():
            self.cat_adj = Adjacency.from_edge_index(
                data.item_categories.flip(0), n_cat, data.n_items, "mean"
            )
        self.profile = nn.Linear(max(self.feature_dim, 1), dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.item_emb.weight, std=0.1)
        with torch.no_grad():
            self.item_emb.weight[self.n_items].zero_()
        nn.init.normal_(self.cat_emb.weight, std=0.1)
        self.profile.reset_parameters()

    def forward(self) -> BehaviorEncoding:
        item = self.item_emb.weight
        if self.cat_adj is not None:
            cat = spmm(self.cat_adj, self.cat_emb.weight)
            item = item + torch.cat([cat, cat.new_zeros(1, self.dim)])
        if self.feature_dim:
            profile = self.profile(self.user_x)
        else:
            profile = self.profile.bias.expand(self.user_x.shape[0], -1)
        return BehaviorEncoding(item=item, profile=profile)

    def behaviour(
        self, enc: BehaviorEncoding, users: Tensor, items: Tensor
    ) -> tuple[Tensor, Tensor]:
        hist = self.history[users]
        mask = (hist != self.n_items) & (hist != items[:, None])
        return rows(enc.item, hist), mask

    @staticmethod
    def mean_pool(vectors: Tensor, mask: Tensor) -> Tensor:
        m = mask.unsqueeze(-1).to(vectors.dtype)
        return (vectors * m).sum(1) / m.sum(1).clamp(min=1.0)
