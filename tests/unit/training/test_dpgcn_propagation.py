"""DP-GCN's light propagation, symmetric normalisation, plain score head and ego penalty."""

from __future__ import annotations

import pytest
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


def _dense_sym(edges: torch.Tensor, n_users: int, n_items: int) -> torch.Tensor:
    a = torch.zeros(n_users + n_items, n_users + n_items)
    a[edges[0], n_users + edges[1]] = 1.0
    a[n_users + edges[1], edges[0]] = 1.0
    d = a.sum(1).clamp(min=1).rsqrt()
    return d[:, None] * a * d[None, :]


def test_sym_stack_divides_by_both_degrees() -> None:
    edges, num = _bipartite()
    stack = RelationStack.build(edges, num, ["User", "Item"], norm="sym")
    dense = stack.adjacency.matrix.to_dense()
    expected = _dense_sym(edges[RATED], 3, 3)
    assert torch.allclose(dense, expected, atol=1e-6)
    mean = RelationStack.build(edges, num, ["User", "Item"]).adjacency.matrix.to_dense()
    assert torch.allclose(mean.sum(1), torch.ones(6))  # rows of the mean stack sum to 1
    assert not torch.allclose(mean, dense)


def test_light_propagation_is_lightgcn_on_a_bipartite_graph() -> None:
    """With one relation (and its reverse), the light type-specific propagation is LightGCN's:
    the mean of :math:`\\tilde A^k \\mathbf{x}` for k = 0..L."""
    torch.manual_seed(0)
    edges, _ = _bipartite()
    gcn = HeteroGCN(["User", "Item"], list(edges), 4, 2, light=True, norm="sym")
    x = {"User": torch.randn(3, 4), "Item": torch.randn(3, 4)}
    out = gcn(x, edges)
    a = _dense_sym(edges[RATED], 3, 3)
    h = torch.cat([x["User"], x["Item"]])
    layers = [h, a @ h, a @ a @ h]
    mean = torch.stack(layers).mean(0)
    assert torch.allclose(out["User"], mean[:3], atol=1e-5)
    assert torch.allclose(out["Item"], mean[3:], atol=1e-5)
    assert sum(p.numel() for p in gcn.parameters()) == 0


def test_ego_penalty_is_the_mean_squared_norm_of_the_pairs_inputs(
    data: GraphData, tiny_config: TrainConfig
) -> None:
    torch.manual_seed(0)
    model = DPGCN(data, dim=8, num_layers=1, hidden=[8], reg_weight=0.5, id_dropout=0.0)
    model.train()
    enc = model.encode()
    users, items = torch.tensor([0, 1, 1]), torch.tensor([2, 0, 3])
    penalty = model.penalty(enc, users, items)
    ego = model.embedding()
    expected = 0.5 * (ego["User"][users].pow(2).sum(-1) + ego["Item"][items].pow(2).sum(-1))
    assert penalty is not None
    assert torch.allclose(penalty, expected.mean() / 2, atol=1e-6)
    penalty.backward()
    assert model.embedding.tables["User"].weight.grad is not None  # type: ignore[union-attr]
    model.eval()
    assert model.penalty(model.encode(), users, items) is None  # training only
    off = DPGCN(data, dim=8, num_layers=1, hidden=[8], reg_weight=0.0)
    off.train()
    assert off.penalty(off.encode(), users, items) is None


def test_plain_head_scores_the_fused_user_against_the_item_vector(data: GraphData) -> None:
    model = DPGCN(data, dim=8, num_layers=1, hidden=[8], transform=False)
    model.eval()
    enc = model.encode()
    h = model.gcn(model.embedding(), model.stack)
    assert model.fusion is not None
    assert torch.allclose(enc.item, h["Item"][: data.n_items])
    assert torch.allclose(enc.user, model.fusion(h["User"][: data.n_users], data.user_x))
    assert not any(n.startswith("head.item_map") for n, _ in model.named_parameters())


def test_registry_dpgcn_trains_with_the_new_defaults(
    data: GraphData, tiny_config: TrainConfig
) -> None:
    model = build_model("dpgcn", data, tiny_config)
    assert isinstance(model, DPGCN)
    model.train()
    enc = model.encode()
    users = torch.arange(min(4, data.n_users))
    logits = model.score(enc, users, users % data.n_items)
    loss = logits.sum()
    penalty = model.penalty(enc, users, users % data.n_items)
    if penalty is not None:
        loss = loss + penalty
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_gated_fusion_starts_as_the_identity_and_learns_its_gate() -> None:
    from training.models.feature_fusion import FeatureFusion

    torch.manual_seed(0)
    fusion = FeatureFusion(4, 3, [8], mode="gated")
    h, s = torch.randn(5, 4), torch.randn(5, 3)
    out = fusion(h, s)
    assert torch.equal(out, h)  # gate 0: the graph vector unchanged at the start
    out.pow(2).sum().backward()
    assert fusion.gate is not None and fusion.gate.grad is not None
    assert fusion.gate.grad.abs() > 0
    with pytest.raises(ValueError, match="nope"):
        FeatureFusion(4, 3, [8], mode="nope")
