"""PyG's own LightGCN, trained by this package's harness (a library-made reference model)."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import torch
from torch import Tensor
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.nn.models import LightGCN as PyGLightGCNModule

from training.dataset import GraphData
from training.models.base import DotEncoding, DotProductModel, suggest_training

if TYPE_CHECKING:
    import optuna


def normalized_adj_t(edge_index: Tensor, num_nodes: int) -> Tensor:
    r""":math:`\mathbf{D}^{-1/2}\mathbf{A}\mathbf{D}^{-1/2}` of an undirected ``edge_index``
    as a ``torch.sparse`` CSR ``adj_t`` (PyG's ``gcn_norm`` without self-loops, as
    :class:`~torch_geometric.nn.conv.LGConv` applies it), computed once instead of at every
    layer call."""
    index, weight = gcn_norm(edge_index, None, num_nodes, add_self_loops=False)
    assert weight is not None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        coo = torch.sparse_coo_tensor(
            index.flip(0), weight, (num_nodes, num_nodes), check_invariants=False
        )
        return coo.coalesce().to_sparse_csr()


class PyGLightGCN(DotProductModel):
    r"""PyG's :class:`torch_geometric.nn.models.LightGCN` (He et al. 2020) as it ships: its
    :class:`~torch_geometric.nn.conv.LGConv` layers, its Xavier initialisation and its layer
    average :math:`\alpha_l = 1 / (L + 1)`, propagating over the user–item graph (users
    first, then items) through PyG's own ``torch.sparse`` product:

    .. math::
        \mathbf{E}^{(l+1)} = \mathbf{D}^{-1/2}\mathbf{A}\mathbf{D}^{-1/2}\mathbf{E}^{(l)},
        \qquad \mathbf{E} = \frac{1}{L+1}\sum_{l=0}^{L}\mathbf{E}^{(l)},
        \qquad \hat y_{ui} = \sigma(\langle \mathbf{e}_u, \mathbf{e}_i \rangle)

    A reference for the project's :class:`~training.models.lightgcn.LightGCN` (same
    arithmetic; a unit test feeds both the same embeddings): only the training objective is
    the harness's (BCE over sampled negatives, like every other model), not PyG's BPR
    ``recommendation_loss``. The normalised adjacency is built once (PyG's ``gcn_norm``) and
    the layers run with ``normalize=False``, so that each step does not normalise it again.

    Args:
        data (GraphData): Training data.
        dim (int): Embedding size :math:`D`.
        num_layers (int): Propagation layers :math:`L`.

    Shapes:
        - **output of** :meth:`encode`: user :math:`(|U|, D)`, item :math:`(|I|, D)` vectors.
    """

    def __init__(self, data: GraphData, dim: int, num_layers: int) -> None:
        super().__init__(data)
        self.num_nodes = max(data.n_users + data.n_items, 1)
        self.lightgcn = PyGLightGCNModule(self.num_nodes, dim, num_layers, normalize=False)
        self.use_graph(data)
        self.reset_parameters()

    def use_graph(self, data: GraphData) -> None:
        both, _ = data.homogeneous_user_item()
        self.adj_t = normalized_adj_t(both, self.num_nodes)

    def reset_parameters(self) -> None:
        self.lightgcn.reset_parameters()

    def encode(self) -> DotEncoding:
        e = self.lightgcn.get_embedding(self.adj_t)
        user, item = e[: self.n_users], e[self.n_users : self.n_users + self.n_items]
        return DotEncoding(user=user, item=item, query=None, bias=e.new_zeros(()))


def search_space(trial: optuna.Trial) -> dict[str, object]:
    """TrainConfig changes of one tuning trial for PyG's LightGCN: the same ranges as the
    project's LightGCN (learning rate, weight decay, embedding size, layers 1-4, negatives)."""
    return suggest_training(trial, max_layers=4, dropout=False)
