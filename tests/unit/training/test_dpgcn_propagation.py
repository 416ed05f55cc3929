"""DP-GCN's light propagation, plain score head and early feature fusion."""

from __future__ import annotations

import torch

from training.config import TrainConfig
from training.dataset import GraphData
from training.models import build_model
from training.models.dpgcn import DPGCN
from training.models.hetero_gcn import HeteroGCN
from training.sparse import RelationStack

RATED = ("User", "RATED", "Item")
REV = ("Item", "rev_RATED", "User")


def _bipartite() -> tuple[dict[tuple[str, str, str], torch.Tensor], dict[str, int]]:
    ui = torch.tensor([[0, 0, 1, 2, 2, 2], [0, 1, 1, 0, 1, 2]])
    return {RATED: ui, REV: ui.flip(0)}, {"User": 3, "Item": 3}


def _dense_mean(edges: torch.Tensor, n_users: int, n_items: int) -> torch.Tensor:
    a = torch.zeros(n_users + n_items, n_users + n_items)
    a[edges[0], n_users + edges[1]] = 1.0
    a[n_users + edges[1], edges[0]] = 1.0
    return a / a.sum(1, keepdim=True).clamp(min=1)


def test_stack_rows_are_neighbour_means() -> None:
    edges, num = _bipartite()
    dense = RelationStack.build(edges, num, ["User", "Item"]).adjacency.matrix.to_dense()
    assert torch.allclose(dense, _dense_mean(edges[RATED], 3, 3), atol=1e-6)
    assert torch.allclose(dense.sum(1), torch.ones(6))


def test_light_propagation_is_lightgcn_on_a_bipartite_graph() -> None:
    """With one relation (and its reverse), the typed propagation is LightGCN's with mean
    normalisation: the mean of :math:`\\tilde A^k \\mathbf{x}` for k = 0..L, no parameters."""
    torch.manual_seed(0)
    edges, _ = _bipartite()
    gcn = HeteroGCN(["User", "Item"], list(edges), 4, 2)
    x = {"User": torch.randn(3, 4), "Item": torch.randn(3, 4)}
    out = gcn(x, edges)
    a = _dense_mean(edges[RATED], 3, 3)
    h = torch.cat([x["User"], x["Item"]])
    layers = [h, a @ h, a @ a @ h]
    mean = torch.stack(layers).mean(0)
    assert torch.allclose(out["User"], mean[:3], atol=1e-5)
    assert torch.allclose(out["Item"], mean[3:], atol=1e-5)
    assert sum(p.numel() for p in gcn.parameters()) == 0


def test_features_are_fused_into_the_input_and_propagated(data: GraphData) -> None:
    """The static features enter the users' layer-0 vectors: they change the users' and,
    through the graph, the items' output vectors; the score is the plain inner product."""
    torch.manual_seed(0)
    model = DPGCN(data, dim=8, num_layers=1, id_dropout=0.0)
    model.eval()
    assert model.fusion is not None
    enc = model.encode()
    x = model.embedding()
    fused = model.inputs()
    assert torch.allclose(fused["User"], model.fusion(x["User"], data.user_x))
    assert torch.equal(fused["Item"], x["Item"])
    h = model.gcn(fused, model.stack)
    assert torch.allclose(enc.user, h["User"][: data.n_users])
    assert torch.allclose(enc.item, h["Item"][: data.n_items])
    users, items = torch.tensor([0, 1]), torch.tensor([2, 0])
    logits = model.score(enc, users, items)
    want = (enc.user[users] * enc.item[items]).sum(-1) + model.head.bias
    assert torch.allclose(logits, want, atol=1e-6)
    model.user_x = data.user_x + 1.0
    moved = model.encode()
    assert not torch.allclose(moved.user, enc.user)
    assert not torch.allclose(moved.item, enc.item)  # items see their users' features


def test_dgcn_has_no_feature_path(data: GraphData, tiny_config: TrainConfig) -> None:
    model = build_model("dgcn", data, tiny_config)
    assert isinstance(model, DPGCN) and model.fusion is None
    model.eval()
    before = model.encode().user
    model.user_x = data.user_x + 1.0
    assert torch.equal(model.encode().user, before)


def test_registry_dpgcn_trains_with_the_defaults(data: GraphData, tiny_config: TrainConfig) -> None:
    model = build_model("dpgcn", data, tiny_config)
    assert isinstance(model, DPGCN)
    model.train()
    enc = model.encode()
    users = torch.arange(min(4, data.n_users))
    logits = model.score(enc, users, users % data.n_items)
    logits.sum().backward()
    assert model.fusion is not None
    assert any(p.grad is not None for p in model.fusion.parameters())
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
