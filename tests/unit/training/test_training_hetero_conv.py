"""DP-GCN's heterogeneous convolution against a plain reference written with PyG's ``scatter``.

The reference below is the model's math spelled out relation by relation (no stacked sparse
matrix, no cached transpose): outputs and gradients of the real model with the same weights must
match it, so a refactoring of the convolution cannot change DP-GCN's results.
"""

from __future__ import annotations

from typing import cast

import pytest
import torch
from torch import Tensor, nn
from torch_geometric.utils import scatter

from training.config import TrainConfig
from training.data import ITEM, QUERY, USER, EdgeType
from training.dataset import GraphData, message_passing_edges
from training.models import build_model
from training.models.dpgcn import DPGCN
from training.models.hetero_gcn import HeteroGCN, HeteroSAGEConv


def _reference_layer(
    conv: HeteroSAGEConv, x: dict[str, Tensor], edges: dict[EdgeType, Tensor]
) -> dict[str, Tensor]:
    out: dict[str, Tensor] = {}
    for dst, relations in conv.relations.items():
        means = []
        for et in relations:
            ei = edges[et]
            means.append(
                scatter(x[et[0]][ei[0]], ei[1], 0, dim_size=x[dst].shape[0], reduce="mean")
            )
        lin = cast(nn.Linear, conv.lins[dst])
        out[dst] = x[dst] + lin(torch.stack(means).mean(0))
    return out


def _reference_gcn(
    gcn: HeteroGCN, x: dict[str, Tensor], edges: dict[EdgeType, Tensor]
) -> dict[str, Tensor]:
    h = dict(x)
    total = {t: x[t] for t in gcn.output_types}
    for conv, norm_dict in zip(gcn.convs, gcn.norms, strict=True):
        norms = cast(nn.ModuleDict, norm_dict)
        out = _reference_layer(cast(HeteroSAGEConv, conv), h, edges)
        h = {t: norms[t](out[t]).relu() if t in out else h[t] for t in h}
        total = {t: total[t] + h[t] for t in total}
    return {t: v / (len(gcn.convs) + 1) for t, v in total.items()}


def _reference_encode(model: DPGCN, edges: dict[EdgeType, Tensor]) -> list[Tensor]:
    h = _reference_gcn(model.gcn, model.embedding(), edges)
    user, item = h[USER][: model.n_users], h[ITEM][: model.n_items]
    if model.fusion is not None:
        user = model.fusion(user, model.user_x)
    u, i, q = model.head(user, item, h.get(QUERY))
    assert q is not None
    return [u, i, q]


@pytest.mark.parametrize("name", ["dpgcn", "dgcn"])
def test_dpgcn_encode_equals_reference(
    name: str, data: GraphData, tiny_config: TrainConfig
) -> None:
    """Same weights, same outputs and same gradients as the relation-by-relation reference."""
    torch.manual_seed(0)
    model = cast(DPGCN, build_model(name, data, tiny_config.replace(num_layers=2)))
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
    for p, a, b in zip(params, got, want, strict=True):
        assert (a is None) == (b is None), p.shape
        if a is not None and b is not None:
            assert torch.allclose(a, b, atol=1e-5), p.shape
