"""LightGCN (He et al. 2020) on the user–item interaction graph."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor, nn

from training.dataset import GraphData
from training.models.base import DotEncoding, DotProductModel, suggest_training
from training.sparse import Adjacency, spmm

if TYPE_CHECKING:
    import optuna


class LightGCN(DotProductModel):
    r"""LightGCN: parameter-free propagation of id embeddings over the normalised user–item
    graph, layers averaged (same arithmetic as PyG's ``LightGCN``, through the package's cached
    sparse product so that timings compare with DP-GCN on equal kernels):

    .. math::
        \mathbf{E}^{(l+1)} = \mathbf{D}^{-1/2}\mathbf{A}\mathbf{D}^{-1/2}\mathbf{E}^{(l)},
        \qquad \mathbf{E} = \frac{1}{L+1}\sum_{l=0}^{L}\mathbf{E}^{(l)},
        \qquad \hat y_{ui} = \sigma(\langle \mathbf{e}_u, \mathbf{e}_i \rangle)

    Trained in this harness with the same BCE over sampled negatives as every other model.

    Args:
        data (GraphData): Training data.
        dim (int): Embedding size :math:`D`.
        num_layers (int): Propagation layers :math:`L`.

    Shapes:
        - **output of** :meth:`encode`: user :math:`(|U|, D)`, item :math:`(|I|, D)` vectors.
    """

    def __init__(self, data: GraphData, dim: int, num_layers: int) -> None:
        super().__init__(data)
        self.use_graph(data)
        self.num_layers = num_layers
        n = data.n_users + data.n_items
        self.embedding = nn.Embedding(max(n, 1), dim)
        self.reset_parameters()

    def use_graph(self, data: GraphData) -> None:
        n = data.n_users + data.n_items
        both, _ = data.homogeneous_user_item()
        self.adj = Adjacency.from_edge_index(both, n, n, "sym")

    def reset_parameters(self) -> None:
        nn.init.normal_(self.embedding.weight, std=0.1)

    def encode(self) -> DotEncoding:
        h: Tensor = self.embedding.weight
        total = h
        for _ in range(self.num_layers):
            h = spmm(self.adj, h)
            total = total + h
        e = total / (self.num_layers + 1)
        user, item = e[: self.n_users], e[self.n_users : self.n_users + self.n_items]
        return DotEncoding(user=user, item=item, query=None, bias=e.new_zeros(()))


def search_space(trial: optuna.Trial) -> dict[str, object]:
    """TrainConfig changes of one tuning trial for LightGCN: learning rate, weight decay,
    embedding size, propagation layers (1-4) and negatives per positive (LightGCN has no
    dropout)."""
    return suggest_training(trial, max_layers=4, dropout=False)
