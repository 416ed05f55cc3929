"""The models as PyG modules: the DP-GCN convolution is a ``MessagePassing`` layer with a fused
sparse product, the project's LightGCN computes what PyG's ``LightGCN`` computes, and PyG's
LightGCN is trained through the registry."""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.nn.models import LightGCN as PyGLightGCNModule

from training.config import TrainConfig
from training.dataset import GraphData, message_passing_edges
from training.hetero import hetero_data_from_split, train_graph
from training.models import build_model
from training.models.dpgcn import DPGCN
from training.models.hetero_gcn import HeteroGCN, HeteroSAGEConv
from training.models.lightgcn import LightGCN
from training.models.pyg_lightgcn import PyGLightGCN
from training.sparse import Adjacency, RelationStack, spmm_t, transpose_of


def _layer(data: GraphData, dim: int = 8) -> tuple[HeteroSAGEConv, RelationStack]:
    torch.manual_seed(0)
    edges = message_passing_edges(data)
    types = list(data.num_nodes)
    return HeteroSAGEConv(types, list(edges), dim, dim), RelationStack.build(
        edges, data.num_nodes, types
    )


def test_hetero_conv_aggregates_through_message_and_aggregate(data: GraphData) -> None:
    conv, stack = _layer(data)
    assert isinstance(conv, MessagePassing) and conv.fuse
    calls: list[int] = []
    conv.register_message_and_aggregate_forward_hook(lambda *args: calls.append(1))
    x = {t: torch.randn(n, 8) for t, n in data.num_nodes.items()}
    conv(x, stack)
    assert calls == [1]  # one fused sparse product for every relation


def test_hetero_conv_edge_index_path_equals_fused_path(data: GraphData) -> None:
    """PyG's gather-scatter path (``propagate`` with ``edge_index`` + ``edge_weight``) and the
    fused CSR product give the same messages and the same gradients."""
    conv, stack = _layer(data)
    n = stack.adjacency.shape[0]
    coo = stack.adjacency.matrix.to_sparse_coo().coalesce()
    edge_index, weight = coo.indices().flip(0), coo.values()
    x = torch.randn(n, 8, requires_grad=True)
    fused = conv.propagate(stack.adjacency.matrix, x=x, edge_weight=None)
    (g_fused,) = torch.autograd.grad(fused.square().sum(), x)
    scattered = conv.propagate(edge_index, x=x, edge_weight=weight, size=(n, n))
    (g_scattered,) = torch.autograd.grad(scattered.square().sum(), x)
    assert torch.allclose(fused, scattered, atol=1e-5)
    assert torch.allclose(g_fused, g_scattered, atol=1e-5)


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
    ours = LightGCN(data, tiny_config.dim, tiny_config.num_layers)
    with torch.no_grad():
        ours.embedding.weight.copy_(model.lightgcn.embedding.weight)
    a, b = model.encode(), ours.encode()
    for x, y in ((a.user, b.user), (a.item, b.item)):
        assert torch.allclose(cast(Tensor, x), y, atol=1e-6)
