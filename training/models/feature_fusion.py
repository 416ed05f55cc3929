"""Fusion of static user features with graph embeddings (DP-GCN feature-fusion layer)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from training.models.base import mlp, reset_mlp


class FeatureFusion(nn.Module):
    r"""Combines a node's graph embedding with its static features through an MLP (paper §3.3:
    "I incorporate necessary static features (such as user age, gender, and preferences) and
    combine them with the initial embeddings, feeding them into a multi-layer neural network"):

    .. math::
        \mathbf{f}_u = \mathbf{h}_u + \mathrm{MLP}\big([\,\mathbf{h}_u \,\|\, \mathbf{s}_u\,]\big)

    with :math:`\mathbf{s}_u` the static features (age scaled to [0, 1], one-hot gender and
    occupation). The residual keeps the graph signal when features are uninformative or absent
    (``feature_dim = 0``).

    Args:
        dim (int): Embedding dimension :math:`D`.
        feature_dim (int): Number of static features :math:`F` (may be 0).
        hidden (list[int]): Hidden sizes of the MLP.
        dropout (float, optional): Dropout inside the MLP. (default: :obj:`0.0`)
        mode (str, optional): ``"concat"`` as above, or ``"gated"``:
            :math:`\mathbf{f}_u = \mathbf{h}_u + g\,\mathrm{MLP}([\mathbf{h}_u \| \mathbf{s}_u])`
            with a learned scalar :math:`g` that starts at 0, so the model starts from the
            graph vector and lets the features in only as far as the loss asks.
            (default: :obj:`"concat"`)

    Shapes:
        - **input:** embeddings :math:`(N, D)`, features :math:`(N, F)`
        - **output:** fused embeddings :math:`(N, D)`
    """

    def __init__(
        self,
        dim: int,
        feature_dim: int,
        hidden: list[int],
        dropout: float = 0.0,
        mode: str = "concat",
    ) -> None:
        super().__init__()
        self.dim = dim
        self.feature_dim = feature_dim
        self.mode = mode
        if mode not in ("concat", "gated"):
            raise ValueError(f"unknown fusion mode {mode!r}")
        self.mlp = mlp([dim + feature_dim, *hidden, dim], dropout=dropout)
        self.gate = nn.Parameter(torch.zeros(())) if mode == "gated" else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_mlp(self.mlp)
        if self.gate is not None:
            nn.init.zeros_(self.gate)

    def forward(self, h: Tensor, features: Tensor) -> Tensor:
        out = self.mlp(torch.cat([h, features], dim=-1))
        if self.gate is not None:
            out = self.gate * out
        return h + out

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(dim={self.dim}, feature_dim={self.feature_dim})"
