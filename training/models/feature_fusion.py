"""Fusion of static user features into the user's input vector (DP-GCN feature-fusion layer)."""

from __future__ import annotations

from torch import Tensor, nn


class FeatureFusion(nn.Module):
    r"""Adds a learned embedding of a user's static features to the user's input vector
    (paper §3.3: "I incorporate necessary static features (such as user age, gender, and
    preferences) and combine them with the initial embeddings"):

    .. math::
        \mathbf{x}^{(0)}_u = \mathbf{x}_u + \mathbf{W}\,\mathbf{s}_u
        = \mathbf{x}_u + \sum_f s_{u,f}\,\mathbf{w}_f

    with :math:`\mathbf{s}_u` the static features (age scaled to [0, 1], one-hot gender and
    occupation): every feature value has its own learned vector :math:`\mathbf{w}_f`
    (initialised :math:`\mathcal{N}(0, 0.1^2)` like the ID and side-token tables), summed into
    the user's layer-0 vector the way an item's category and term vectors are summed into the
    item's (:class:`~training.models.node_embedding.SideProjection`).
    :class:`~training.models.dpgcn.DPGCN` applies it before propagation, so the feature term is
    smoothed over the graph like the rest of the user's vector and reaches the items. An MLP
    over :math:`[\mathbf{x}_u \| \mathbf{s}_u]` in its place is a free per-user map: it cost
    validation NDCG@10 on MovieLens-100K (docs/model.md, "Fourth round").

    Args:
        dim (int): Embedding dimension :math:`D`.
        feature_dim (int): Number of static features :math:`F` (0: the input is unchanged).

    Shapes:
        - **input:** vectors :math:`(N, D)`, features :math:`(N, F)`
        - **output:** fused vectors :math:`(N, D)`
    """

    def __init__(self, dim: int, feature_dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.feature_dim = feature_dim
        # no features: no weight (a [D, 0] matrix would add nothing)
        self.embed = nn.Linear(feature_dim, dim, bias=False) if feature_dim else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.embed is not None:  # as every other embedding table
            nn.init.normal_(self.embed.weight, std=0.1)

    def forward(self, h: Tensor, features: Tensor) -> Tensor:
        if self.embed is None:
            return h
        return h + self.embed(features)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(dim={self.dim}, feature_dim={self.feature_dim})"
