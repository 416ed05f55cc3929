"""DP-GCN's typed propagation against references written relation by relation.

The references below are the model's math spelled out without the stacked sparse matrix: once
with PyG's ``scatter`` and once as PyG's own ``HeteroConv`` of ``SimpleConv`` layers. Outputs
and gradients of the real model with the same weights must match, so a refactoring of the
propagation cannot change DP-GCN's results.
"""

from __future__ import annotations

from typing import cast

import pytest
import torch
from torch import Tensor
from torch_geometric.nn.conv import HeteroConv, SimpleConv
from torch_geometric.utils import scatter

from training.config import TrainConfig
from training.data import ITEM, QUERY, USER, EdgeType
from training.dataset import GraphData, message_passing_edges
from training.models import build_model
from training.models.dpgcn import DPGCN
from training.models.hetero_gcn import HeteroGCN


def _reference_layer(
    gcn: HeteroGCN, x: dict[str, Tensor], edges: dict[EdgeType, Tensor]
) -> dict[str, Tensor]:
    """Per destination type: the mean over its neighbours of each relation, averaged over
    the relations into the type; types without incoming relations keep their vectors."""
    means: dict[str, list[Tensor]] = {}
    for et in gcn.edge_types:
        ei = edges[et]
        means.setdefault(et[2], []).append(
            scatter(x[et[0]][ei[0]], ei[1], 0, dim_size=x[et[2]].shape[0], reduce="mean")
        )
    return {t: torch.stack(means[t]).mean(0) if t in means else x[t] for t in x}


def _reference_gcn(
    gcn: HeteroGCN, x: dict[str, Tensor], edges: dict[EdgeType, Tensor]
) -> dict[str, Tensor]:
    h = dict(x)
    total = {t: x[t] for t in gcn.output_types}
    for _ in range(gcn.num_layers):
        h = _reference_layer(gcn, h, edges)
        total = {t: total[t] + h[t] for t in total}
    return {t: v / (gcn.num_layers + 1) for t, v in total.items()}


def _reference_encode(model: DPGCN, edges: dict[EdgeType, Tensor]) -> list[Tensor]:
    x = model.embedding()
    if model.fusion is not None:
        x = {**x, USER: model.fusion(x[USER], model.user_x)}
    h = _reference_gcn(model.gcn, x, edges)
    assert QUERY in h
    return [h[USER][: model.n_users], h[ITEM][: model.n_items], h[QUERY]]


@pytest.mark.parametrize("name", ["dpgcn", "dgcn"])
def test_dpgcn_encode_equals_reference(
    name: str, data: GraphData, tiny_config: TrainConfig
) -> None:
    """Same weights, same outputs and same gradients as the relation-by-relation reference."""
    torch.manual_seed(0)
    model = cast(DPGCN, build_model(name, data, tiny_config.replace({"model.num_layers": 2})))
    model.eval()
    edges = message_passing_edges(data)
    enc = model.encode()
    ours = [enc.user, enc.item, enc.query]
    theirs = _reference_encode(model, edges)
    for a, b in zip(ours, theirs, strict=True):
        assert a is not None
        assert a.shape == b.shape
        assert torch.allclose(a, b, atol=1e-5)
    weights = [torch.randn_like(t) for t in theirs]
    params = [p for p in model.parameters() if p.requires_grad]

    def grads(outputs: list[Tensor]) -> tuple[Tensor, ...]:
        loss = sum((o * w).sum() for o, w in zip(outputs, weights, strict=True))
        return torch.autograd.grad(cast(Tensor, loss), params, allow_unused=True)

    got = grads(cast(list[Tensor], ours))
    want = grads(_reference_encode(model, edges))
    assert any(g is not None for g in got)
    for p, a, b in zip(params, got, want, strict=True):
        assert (a is None) == (b is None), p.shape
        if a is not None and b is not None:
            assert torch.allclose(a, b, atol=1e-5), p.shape


def test_hetero_layer_equals_pyg_heteroconv(data: GraphData, tiny_config: TrainConfig) -> None:
    """One propagation layer is PyG's ``HeteroConv({r: SimpleConv(aggr="mean")},
    aggr="mean")``: each relation mean-aggregated, the relations into a type averaged."""
    torch.manual_seed(0)
    model = cast(DPGCN, build_model("dgcn", data, tiny_config.replace({"model.num_layers": 1})))
    edges = message_passing_edges(data)
    gcn = model.gcn
    x = {t: torch.randn(n, 8) for t, n in model.embedding.num_nodes.items()}
    ours = gcn(x, edges)
    conv = HeteroConv({et: SimpleConv(aggr="mean") for et in gcn.edge_types}, aggr="mean")
    layer = conv(x, {et: edges[et] for et in gcn.edge_types})
    assert set(ours) == set(gcn.output_types)
    for t in ours:
        assert torch.allclose(ours[t], (x[t] + layer[t]) / 2, atol=1e-5), t
