"""DP-GCN's cheaper step formulations equal the ones they replaced: the side-information
projection as one cached sparse product (was ``EmbeddingBag``), the unknown-vector swap as
an ``index_put`` (was ``torch.where``) and the layer sum of :class:`HeteroGCN` accumulated in
place (was a chain of new tensors, plus the keep-term of every row): outputs and gradients."""

from __future__ import annotations

from typing import cast

import pytest
import torch
from torch import Tensor, nn

from training.dataset import SideBag
from training.models.hetero_gcn import HeteroGCN, received_share
from training.models.node_embedding import (
    NodeEmbedding,
    SideProjection,
    bag_rows,
    with_rows_replaced,
)
from training.sparse import RelationStack, spmm

EdgeType = tuple[str, str, str]


def _bag() -> SideBag:
    """Five nodes: a repeated token (node 0), an empty bag (node 2), uneven weights."""
    tokens = torch.tensor([3, 1, 3, 0, 4, 2, 5, 1])
    offsets = torch.tensor([0, 3, 5, 5, 7])
    weights = torch.tensor([0.5, 0.25, 0.5, 1.0, 0.3, 0.7, 0.2, 0.9])
    return SideBag(tokens, offsets, weights, num_tokens=6, groups={"t": 0})


@pytest.mark.parametrize("scale", [1.0, 5.0])
def test_side_projection_equals_embedding_bag(scale: float) -> None:
    torch.manual_seed(0)
    proj = SideProjection(6, 4, scale)
    bag = _bag()
    w = torch.randn(5, 4)
    out = proj(bag)
    (out * w).sum().backward()
    got = cast(Tensor, proj.bag.weight.grad).clone()
    proj.bag.weight.grad = None
    ref = nn.functional.embedding_bag(
        bag.tokens, proj.bag.weight, bag.offsets, mode="sum", per_sample_weights=bag.weights
    )
    ref = ref * scale
    (ref * w).sum().backward()
    assert torch.allclose(out, ref, atol=1e-6)
    assert torch.equal(out[2], torch.zeros(4))
    assert torch.allclose(got, cast(Tensor, proj.bag.weight.grad), atol=1e-6)
    # chosen rows (the mini-batch path) give the same rows
    rows = torch.tensor([4, 0, 2])
    assert torch.allclose(proj(bag, rows), out[rows], atol=1e-6)
    assert len(bag_rows(bag, rows)[0]) == 1 + 3 + 0


def test_side_projection_rebuilds_its_matrix_for_another_bag() -> None:
    proj = SideProjection(6, 4)
    first = proj(_bag())
    other = SideBag(torch.tensor([5]), torch.tensor([0, 1]), torch.tensor([1.0]), 6, {"t": 0})
    second = proj(other)
    assert first.shape == (5, 4) and second.shape == (2, 4)
    assert torch.allclose(second[0], proj.bag.weight[5])
    assert torch.equal(second[1], torch.zeros(4))


def test_rows_replaced_equals_where() -> None:
    torch.manual_seed(0)
    x = torch.randn(7, 3, requires_grad=True)
    vec = torch.randn(3, requires_grad=True)
    rows = torch.tensor([True, False, False, True, True, False, False])
    w = torch.randn(7, 3)
    got = with_rows_replaced(x, rows, vec)
    gx, gv = torch.autograd.grad((got * w).sum(), [x, vec])
    ref = torch.where(rows[:, None], vec, x)
    rx, rv = torch.autograd.grad((ref * w).sum(), [x, vec])
    assert torch.equal(got, ref)
    assert torch.equal(gx, rx)
    assert torch.allclose(gv, rv, atol=1e-6)
    none = with_rows_replaced(x, torch.zeros(7, dtype=torch.bool), vec)
    assert torch.equal(none, x)


def test_node_embedding_with_id_dropout_equals_where_reference() -> None:
    """Training mode: the same random draws as ``torch.where`` over the mask would use."""
    num = {"User": 5, "Item": 5}
    trained = {"Item": torch.tensor([True, True, False, True, True])}
    emb = NodeEmbedding(num, 4, trained=trained, side={"Item": _bag()}, id_dropout=0.4)
    with torch.no_grad():
        emb.unknown["Item"].normal_()
    emb.train()
    torch.manual_seed(3)
    out = emb()
    torch.manual_seed(3)
    keep = torch.rand(5) >= 0.4
    table = cast(nn.Embedding, emb.tables["Item"]).weight
    side = cast(SideProjection, emb.projections["Item"])(_bag())
    ref = torch.where((trained["Item"] & keep)[:, None], table, emb.unknown["Item"]) + side
    assert torch.allclose(out["Item"], ref, atol=1e-6)
    assert torch.equal(out["User"], cast(nn.Embedding, emb.tables["User"]).weight)


def _silent_graph() -> tuple[dict[EdgeType, Tensor], dict[str, int]]:
    """User ↔ Item plus Tag → Item only: Tag receives no relation and keeps its vectors."""
    ui = torch.tensor([[0, 0, 1, 2, 3], [0, 1, 1, 2, 2]])
    tag = torch.tensor([[0, 1, 1], [0, 1, 2]])
    edges = {
        ("User", "R", "Item"): ui,
        ("Item", "rev_R", "User"): ui.flip(0),
        ("Tag", "T", "Item"): tag,
    }
    return edges, {"User": 4, "Item": 3, "Tag": 2}


def _reference(
    gcn: HeteroGCN, x: dict[str, Tensor], stack: RelationStack, outputs: list[str]
) -> dict[str, Tensor]:
    """The layer loop as written before: a keep-term for every row, a new tensor per sum."""
    h = torch.cat([x[t] for t in stack.node_types])
    receives = torch.zeros(len(h), 1)
    for t in stack.relations:
        receives[stack.slices[t]] = 1.0
    total = h
    for _ in range(gcn.num_layers):
        m = spmm(stack.adjacency, h)
        if gcn.relation_mean == "node":
            m = m / received_share(stack.adjacency)
        h = m + (1 - receives) * h
        total = total + h
    total = total / (gcn.num_layers + 1)
    return {t: total[stack.slices[t]] for t in outputs}


@pytest.mark.parametrize("num_layers", [0, 1, 2, 3])
@pytest.mark.parametrize("relation_mean", ["type", "node"])
@pytest.mark.parametrize("outputs", [["User", "Item"], ["User", "Item", "Tag"], ["Tag"]])
def test_layer_sum_equals_reference(
    num_layers: int, relation_mean: str, outputs: list[str]
) -> None:
    torch.manual_seed(num_layers)
    edges, num = _silent_graph()
    types = ["User", "Item", "Tag"]
    gcn = HeteroGCN(types, list(edges), 4, num_layers, output_types=outputs)
    gcn.relation_mean = relation_mean
    stack = RelationStack.build(edges, num, types, head_types=outputs)
    x = {t: torch.randn(n, 4, requires_grad=True) for t, n in num.items()}
    out = gcn(x, stack)
    ref = _reference(gcn, x, RelationStack.build(edges, num, types), outputs)
    assert set(out) == set(outputs)
    w = {t: torch.randn_like(v) for t, v in ref.items()}
    inputs = [x[t] for t in types]
    got = torch.autograd.grad(torch.stack([(out[t] * w[t]).sum() for t in out]).sum(), inputs)
    want = torch.autograd.grad(torch.stack([(ref[t] * w[t]).sum() for t in ref]).sum(), inputs)
    for t in outputs:
        assert torch.allclose(out[t], ref[t], atol=1e-6), t
    if num_layers and "Tag" in outputs:  # a silent type's rows are its input, every layer
        assert torch.allclose(out["Tag"], x["Tag"], atol=1e-6)
    for a, b in zip(got, want, strict=True):
        assert torch.allclose(a, b, atol=1e-6)
