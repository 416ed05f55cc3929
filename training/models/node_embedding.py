"""Initial node embeddings of the heterogeneous graph (DP-GCN input layer)."""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn


class NodeEmbedding(nn.Module):
    r"""Trainable initial embeddings, one table per node type (paper §3.3: "initial embeddings
    for users, items and queries using pre-trained vectors or random initialization with the
    same dimensionality").

    .. math::
        \mathbf{x}^{(0)}_v = \mathbf{E}_{\tau(v)}[v] \in \mathbb{R}^{D}

    where :math:`\tau(v)` is the node type (User, Item, Query, Term, Category). Tables listed in
    ``pretrained`` (e.g. Term vectors from :mod:`training.word2vec`) start from those vectors
    and stay trainable; the others start from :math:`\mathcal{N}(0, 0.1^2)`.

    Args:
        num_nodes (dict[str, int]): Number of nodes per node type.
        dim (int): Embedding dimension :math:`D` (paper: 128).
        pretrained (dict[str, Tensor], optional): Initial vectors ``[N_t, D]`` per node type.

    Shapes:
        - **output:** ``x_dict`` with :math:`(|\mathcal{V}_t|, D)` per node type :math:`t`.
    """

    def __init__(
        self,
        num_nodes: dict[str, int],
        dim: int,
        pretrained: dict[str, Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.num_nodes = {t: n for t, n in num_nodes.items() if n > 0}
        self.dim = dim
        self.pretrained = dict(pretrained or {})
        for t, v in self.pretrained.items():
            if t in self.num_nodes and tuple(v.shape) != (self.num_nodes[t], dim):
                raise ValueError(f"pretrained {t} vectors have shape {tuple(v.shape)}")
        self.tables = nn.ModuleDict({t: nn.Embedding(n, dim) for t, n in self.num_nodes.items()})
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for t, weight in self.forward().items():
            if t in self.pretrained:
                with torch.no_grad():
                    weight.copy_(self.pretrained[t])
            else:
                nn.init.normal_(weight, std=0.1)

    def forward(self) -> dict[str, Tensor]:
        return {t: cast(nn.Embedding, table).weight for t, table in self.tables.items()}

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.num_nodes}, dim={self.dim})"
