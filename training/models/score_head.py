"""The DP-GCN output layer: sigmoid of a one-output layer over the crosstalk (paper eq. 6)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from training.models.base import reset_modules


class ScoreHead(nn.Module):
    r"""Output layer of DP-GCN (paper eq. 6), factorised so that serving is one dot product.

    The fused user representation :math:`\mathbf{f}_u` (already the output of the fusion MLP)
    and the item's graph representation, mapped by a type-specific linear layer, interact
    through the "embedding crosstalk" — an element-wise product — read out by an output layer
    with one output :math:`(\mathbf{w}, b)`:

    .. math::
        \hat y_{ui} = \sigma\big(\mathbf{w}^\top(\mathbf{f}_u \odot
        (\mathbf{W}_I\mathbf{h}_i + \mathbf{b}_I)) + b\big)
        = \sigma\big(\langle \mathbf{w} \odot \mathbf{f}_u,\,
        \mathbf{W}_I\mathbf{h}_i + \mathbf{b}_I \rangle + b\big)

    so the exported user vector is :math:`\mathbf{w} \odot \mathbf{f}_u` and the item vector
    :math:`\mathbf{W}_I\mathbf{h}_i + \mathbf{b}_I`. Queries get their own map
    :math:`\mathbf{W}_Q` and are scored against the same user vector. Trained with binary
    cross-entropy over positive and sampled negative pairs (paper eq. 7).

    With ``transform=False`` (DP-GCN's default) the crosstalk is read out with unit weights:
    :math:`\hat y_{ui} = \sigma(\langle \mathbf{f}_u, \mathbf{h}_i \rangle + b)`, the exported
    vectors are the fused user and the graph item vectors themselves, and user and item stay
    in the one space the propagation smooths (a free item map :math:`\mathbf{W}_I` let the
    item side fit the training pairs apart from its graph neighbourhood; docs/model.md,
    "Quality").

    Args:
        dim (int): Embedding dimension :math:`D`.
        with_query (bool, optional): Whether to build the query map. (default: :obj:`True`)
        transform (bool, optional): Learn :math:`\mathbf{w}`, :math:`\mathbf{W}_I`,
            :math:`\mathbf{W}_Q` (else the inner product of the inputs). (default: :obj:`True`)

    Shapes:
        - **input:** user :math:`(N_u, D)`, item :math:`(N_i, D)`, query :math:`(N_q, D)`
        - **output:** vectors of the same shapes whose inner products are logits (minus
          :math:`b`)
    """

    def __init__(self, dim: int, with_query: bool = True, transform: bool = True) -> None:
        super().__init__()
        self.dim = dim
        self.transform = transform
        self.item_map: nn.Module = nn.Linear(dim, dim) if transform else nn.Identity()
        self.query_map: nn.Module | None = None
        if with_query:
            self.query_map = nn.Linear(dim, dim) if transform else nn.Identity()
        self.weight = nn.Parameter(torch.empty(dim)) if transform else None
        self.bias = nn.Parameter(torch.empty(()))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_modules([self.item_map] + ([self.query_map] if self.query_map is not None else []))
        if self.weight is not None:
            nn.init.ones_(self.weight)
        nn.init.zeros_(self.bias)

    def forward(
        self, user: Tensor, item: Tensor, query: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        q = None
        if query is not None and self.query_map is not None:
            q = self.query_map(query)
        if self.weight is None:
            return user, item, q
        return user * self.weight, self.item_map(item), q

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(dim={self.dim})"
