"""Fusion of static user features into the user's input vector (DP-GCN feature-fusion layer)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from training.models.base import mlp, reset_mlp


class FeatureFusion(nn.Module):
    r"""Combines a user's input vector with its static features through an MLP (paper §3.3:
    "I incorporate necessary static features (such as user age, gender, and preferences) and
    combine them with the initial embeddings, feeding them into a multi-layer neural network"):

    .. math::
        \mathbf{x}^{(0)}_u = \mathbf{x}_u + \mathrm{MLP}\big([\,\mathbf{x}_u \,\|\,
        \mathbf{s}_u\,]\big)

    with :math:`\mathbf{s}_u` the static features (age scaled to [0, 1], one-hot gender and
    occupation). :class:`~training.models.dpgcn.DPGCN` applies it to the input (layer-0)
    vectors, so the fused term is propagated and smoothed like the rest of the user's vector;
    applied after propagation it left an unsmoothed per-user term and cost validation NDCG@10
    (docs/model.md, "Quality"). The residual keeps the ID vector when the features are
    uninformative or absent (``feature_dim = 0``).

    Args:
        dim (int): Embedding dimension :math:`D`.
        feature_dim (int): Number of static features :math:`F` (may be 0).
        hidden (list[int]): Hidden sizes of the MLP.
        dropout (float, optional): Dropout inside the MLP. (default: :obj:`0.0`)

    Shapes:
        - **input:** vectors :math:`(N, D)`, features :math:`(N, F)`
        - **output:** fused vectors :math:`(N, D)`
    """

    def __init__(self, dim: int, feature_dim: int, hidden: list[int], dropout: float = 0.0) -> None:
        super().__init__()
        self.dim = dim
        self.feature_dim = feature_dim
        self.mlp = mlp([dim + feature_dim, *hidden, dim], dropout=dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_mlp(self.mlp)

    def forward(self, h: Tensor, features: Tensor) -> Tensor:
        return h + self.mlp(torch.cat([h, features], dim=-1))

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(dim={self.dim}, feature_dim={self.feature_dim})"
