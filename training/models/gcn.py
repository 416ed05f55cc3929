"""Single GCN (Kipf & Welling 2017) on the user–item interaction graph."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from training.dataset import GraphData
from training.models.base import DotEncoding, DotProductModel, reset_modules, suggest_training
from training.sparse import Adjacency, spmm

if TYPE_CHECKING:
    import optuna


class GCN(DotProductModel):
    r"""A plain GCN over the homogeneous user–item graph (users and items as one node set,
    interactions as undirected edges), the paper's "single GCN" baseline (eq. 1):

    .. math::
        \mathbf{H}^{(l+1)} = \sigma\big(\tilde{\mathbf{D}}^{-1/2}\tilde{\mathbf{A}}
        \tilde{\mathbf{D}}^{-1/2}\mathbf{H}^{(l)}\mathbf{W}^{(l)}\big),
        \quad \tilde{\mathbf{A}} = \mathbf{A} + \mathbf{I}

    with trainable id embeddings :math:`\mathbf{H}^{(0)}`, no activation after the last layer,
    and :math:`\hat y_{ui} = \sigma(\langle \mathbf{h}_u, \mathbf{h}_i \rangle)`. Only
    user–item edges are used (no queries, terms, categories or static features).

    Args:
        data (GraphData): Training data.
        dim (int): Embedding size :math:`D`.
        num_layers (int): Number of GCN layers.
        dropout (float, optional): Dropout between layers. (default: :obj:`0.0`)

    Shapes:
        - **output of** :meth:`encode`: user :math:`(|U|, D)`, item :math:`(|I|, D)` vectors.
    """

    def __init__(self, data: GraphData, dim: int, num_layers: int, dropout: float = 0.0) -> None:
        super().__init__(data)
        n = data.n_users + data.n_items
        self.use_graph(data)
        self.embedding = nn.Embedding(max(n, 1), dim)
        self.lins = nn.ModuleList(nn.Linear(dim, dim) for _ in range(num_layers))
        self.dropout = nn.Dropout(dropout)
        self.reset_parameters()

    def use_graph(self, data: GraphData) -> None:
        n = data.n_users + data.n_items
        both, _ = data.homogeneous_user_item()
        loops = torch.arange(n, device=both.device)
        edge_index = torch.cat([both, torch.stack([loops, loops])], dim=1)
        self.adj = Adjacency.from_edge_index(edge_index, n, n, "sym")

    def reset_parameters(self) -> None:
        nn.init.normal_(self.embedding.weight, std=0.1)
        reset_modules(self.lins)

    def encode(self) -> DotEncoding:
        h = self.embedding.weight
        for j, lin in enumerate(self.lins):
            h = spmm(self.adj, lin(h))
            if j < len(self.lins) - 1:
                h = self.dropout(h.relu())
        user, item = h[: self.n_users], h[self.n_users : self.n_users + self.n_items]
        return DotEncoding(user=user, item=item, query=None, bias=h.new_zeros(()))


def search_space(trial: optuna.Trial) -> dict[str, object]:
    """TrainConfig changes of one tuning trial for GCN: learning rate, weight decay, embedding
    size, layers (1-3), dropout and negatives per positive."""
    return suggest_training(trial, max_layers=3)
