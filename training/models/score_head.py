"""The DP-GCN output layer: the inner product of user and item vectors plus a bias (eq. 6)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from training.models.base import DotEncoding


class ScoreHead(nn.Module):
    r"""Output layer of DP-GCN (paper eq. 6), in the form serving needs, one dot product:

    .. math::
        \hat y_{ui} = \sigma\big(\langle \mathbf{h}_u, \mathbf{h}_i \rangle + b\big),
        \qquad \hat y_{uq} = \sigma\big(\langle \mathbf{h}_u, \mathbf{h}_q \rangle + b\big)

    the "embedding crosstalk" (element-wise product) of the propagated user and item (or
    query) vectors read out with unit weights, plus a learned global bias :math:`b`. Trained
    with binary cross-entropy over positive and sampled negative pairs (paper eq. 7). The
    exported vectors are the propagated vectors themselves, so users, items and queries stay
    in the one space the propagation smooths (a learned read-out weight and item / query maps
    let the item side fit the training pairs apart from its graph neighbourhood and cost
    validation NDCG@10: docs/model.md, "Quality").

    Shapes:
        - **input:** user :math:`(N_u, D)`, item :math:`(N_i, D)`, query :math:`(N_q, D)`
        - **output:** a :class:`~training.models.base.DotEncoding` of those vectors and
          :math:`b`
    """

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.empty(()))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.bias)

    def forward(self, user: Tensor, item: Tensor, query: Tensor | None = None) -> DotEncoding:
        return DotEncoding(user=user, item=item, query=query, bias=self.bias)
