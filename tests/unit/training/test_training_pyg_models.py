"""The models and PyG: the sparse products behind the propagation, DP-GCN's encoder on a
``HeteroData``'s edges, the project's LightGCN computes what PyG's ``LightGCN`` computes, and
PyG's LightGCN is trained through the registry. (DP-GCN's layer against PyG's ``HeteroConv``:
``test_training_hetero_conv.py``.)"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor
from torch_geometric.nn.models import LightGCN as PyGLightGCNModule

from training.config import TrainConfig
from training.dataset import GraphData
from training.hetero import hetero_data_from_split, train_graph
from training.models import build_model
from training.models.dpgcn import DPGCN
from training.models.hetero_gcn import HeteroGCN
from training.models.lightgcn import LightGCN
from training.models.pyg_lightgcn import PyGLightGCN
from training.sparse import Adjacency, spmm_t, transpose_of


def test_spmm_t_gradient_uses_cached_transpose() -> None:
    torch.manual_seed(0)
    edge_index = torch.stack([torch.randint(0, 30, (200,)), torch.randint(0, 20, (200,))])
    adj = Adjacency.from_edge_index(edge_index, 30, 20, "mean")
    assert transpose_of(adj.matrix) is adj.matrix_t  # attached, not recomputed
    dense = adj.matrix.to_dense()
    x = torch.randn(30, 4, dtype=torch.float32, requires_grad=True)
    out = spmm_t(adj.matrix, x)
    assert torch.allclose(out, dense @ x, atol=1e-6)
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert torch.allclose(grad, dense.t() @ torch.ones(20, 4), atol=1e-6)
    # a CSR matrix built elsewhere gets its transpose computed once, then reused
    plain = dense.to_sparse_csr()
    first = transpose_of(plain)
    assert transpose_of(plain) is first
    assert torch.allclose(first.to_dense(), dense.t())


def test_spmm_is_deterministic_across_thread_counts() -> None:
    torch.manual_seed(0)
    adj = Adjacency.from_edge_index(torch.randint(0, 3000, (2, 60_000)), 3000, 3000, "sym")
    x = torch.randn(3000, 32, requires_grad=True)
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            out = spmm_t(adj.matrix, x)
            (grad,) = torch.autograd.grad(out.square().sum(), x)
            results.append((out.detach(), grad))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1], results[1][1])


def test_hetero_gcn_takes_hetero_data_edges(data: GraphData, tiny_config: TrainConfig) -> None:
    """DP-GCN's encoder on the ``edge_index_dict`` of :func:`training.hetero.train_graph` gives
    what it gives on the harness's own relation stack."""
    torch.manual_seed(0)
    model = cast(DPGCN, build_model("dgcn", data, tiny_config))
    model.eval()
    x = model.embedding()
    gcn: HeteroGCN = model.gcn
    ours = gcn(x, model.stack)
    hetero = train_graph(hetero_data_from_split(data.split))
    theirs = gcn(x, hetero.edge_index_dict)
    assert set(ours) == set(theirs)
    for t in ours:
        assert torch.allclose(ours[t], theirs[t], atol=1e-5), t


def test_lightgcn_equals_pyg_lightgcn(data: GraphData) -> None:
    """Same embeddings in, same propagated embeddings out as PyG's stock ``LightGCN`` (with
    its own ``gcn_norm`` on the ``edge_index``)."""
    torch.manual_seed(0)
    ours = LightGCN(data, dim=8, num_layers=3)
    n = data.n_users + data.n_items
    pyg = PyGLightGCNModule(n, 8, 3)
    with torch.no_grad():
        pyg.embedding.weight.copy_(ours.embedding.weight)
    both, _ = data.homogeneous_user_item()
    theirs = pyg.get_embedding(both)
    enc = ours.encode()
    assert torch.allclose(enc.user, theirs[: data.n_users], atol=1e-6)
    assert torch.allclose(enc.item, theirs[data.n_users :], atol=1e-6)


def test_registry_pyg_lightgcn_is_pyg_module(data: GraphData, tiny_config: TrainConfig) -> None:
    torch.manual_seed(0)
    model = build_model("lightgcn_pyg", data, tiny_config)
    assert isinstance(model, PyGLightGCN)
    assert isinstance(model.lightgcn, PyGLightGCNModule)
    ours = LightGCN(data, tiny_config.model.dim, tiny_config.model.num_layers)
    with torch.no_grad():
        ours.embedding.weight.copy_(model.lightgcn.embedding.weight)
    a, b = model.encode(), ours.encode()
    for x, y in ((a.user, b.user), (a.item, b.item)):
        assert torch.allclose(cast(Tensor, x), y, atol=1e-6)
