"""Cold items on the warm items' scale: the relation mean over the relations a node has
neighbours under, and the side path's learning-rate multiplier, DP-GCN settings for the
cold-start simulation (docs/model.md, "Cold items on the warm items' scale")."""

from __future__ import annotations

from typing import cast

import pytest
import torch
from torch import Tensor
from torch_geometric.utils import scatter

from training.data import ITEM, USER, EdgeType
from training.dataset import GraphData, SideBag
from training.models.dpgcn import DPGCN
from training.models.hetero_gcn import HeteroGCN
from training.models.node_embedding import SideProjection

CLICKED: EdgeType = (USER, "CLICKED", ITEM)
IN_CATEGORY: EdgeType = ("Category", "rev_IN_CATEGORY", ITEM)
HAS_TERM: EdgeType = ("Term", "rev_HAS_TERM", ITEM)


def _graph() -> tuple[dict[EdgeType, Tensor], dict[str, Tensor]]:
    """Three relations into Item; item 0 has users, a category and terms, item 1 (cold) a
    category and terms only, item 2 only a category."""
    edges = {
        CLICKED: torch.tensor([[0, 1, 1], [0, 0, 0]]),
        IN_CATEGORY: torch.tensor([[0, 0, 1], [0, 1, 2]]),
        HAS_TERM: torch.tensor([[0, 1, 1], [0, 1, 1]]),
    }
    torch.manual_seed(0)
    x = {USER: torch.randn(2, 4), ITEM: torch.randn(3, 4), "Category": torch.randn(2, 4)}
    x["Term"] = torch.randn(2, 4)
    return edges, x


def _relation_means(edges: dict[EdgeType, Tensor], x: dict[str, Tensor]) -> list[Tensor]:
    return [
        scatter(x[et[0]][ei[0]], ei[1], 0, dim_size=3, reduce="mean") for et, ei in edges.items()
    ]


def test_node_mean_averages_the_relations_present() -> None:
    """``"node"``: an item's message is the mean of the relation means it receives (the cold
    item 1: category and terms, item 2: its category alone); ``"type"`` divides the same sum
    by all 3 relations into Item, so the cold item's message is 2/3 and item 2's 1/3 of it."""
    edges, x = _graph()
    means = _relation_means(edges, x)
    present = torch.stack(
        [scatter(torch.ones(ei.shape[1]), ei[1], 0, dim_size=3) > 0 for ei in edges.values()]
    )
    total = torch.stack(means).sum(0)
    node = HeteroGCN(list(x), list(edges), 4, 1, relation_mean="node", output_types=[ITEM])
    typ = HeteroGCN(list(x), list(edges), 4, 1, relation_mean="type", output_types=[ITEM])
    got_node, got_type = node(x, edges)[ITEM], typ(x, edges)[ITEM]
    want_node = (x[ITEM] + total / present.sum(0)[:, None]) / 2
    want_type = (x[ITEM] + total / 3) / 2
    assert torch.allclose(got_node, want_node, atol=1e-6)
    assert torch.allclose(got_type, want_type, atol=1e-6)
    # the cold item's message: the mean of its category's and its terms' messages
    assert torch.allclose(2 * got_node[1] - x[ITEM][1], (means[1][1] + means[2][1]) / 2, atol=1e-6)
    assert not torch.allclose(got_node[1], got_type[1], atol=1e-3)
    # item 0 has every relation: both rules agree
    assert torch.allclose(got_node[0], got_type[0], atol=1e-6)


def test_node_mean_has_the_gradient_of_the_reference() -> None:
    edges, x = _graph()
    x = {t: v.requires_grad_() for t, v in x.items()}
    gcn = HeteroGCN(list(x), list(edges), 4, 2, relation_mean="node")
    w = torch.randn(3, 4)
    (gcn(x, edges)[ITEM] * w).sum().backward()
    got = {t: cast(Tensor, v.grad).clone() for t, v in x.items()}
    for v in x.values():
        v.grad = None
    # reference: two layers, each relation mean-aggregated, averaged over the present ones
    h, total = dict(x), dict(x)
    for _ in range(2):
        new = {}
        for dst in (USER, ITEM, "Category", "Term"):
            rels = [(et, ei) for et, ei in edges.items() if et[2] == dst]
            if not rels:
                new[dst] = h[dst]
                continue
            n = h[dst].shape[0]
            s = sum(
                scatter(h[et[0]][ei[0]], ei[1], 0, dim_size=n, reduce="mean") for et, ei in rels
            )
            k = sum(
                (scatter(torch.ones(ei.shape[1]), ei[1], 0, dim_size=n) > 0).float()
                for _, ei in rels
            )
            new[dst] = cast(Tensor, s) / cast(Tensor, k).clamp(min=1)[:, None]
        h = new
        total = {t: total[t] + h[t] for t in total}
    (total[ITEM] / 3 * w).sum().backward()
    for t, v in x.items():
        assert torch.allclose(got[t], cast(Tensor, v.grad), atol=1e-5), t


def test_side_scale_multiplies_the_side_paths_adam_step() -> None:
    """Same initial output distribution, ``scale`` times the change per Adam step."""
    bag = SideBag(
        tokens=torch.tensor([0, 1]),
        offsets=torch.tensor([0, 1]),
        weights=torch.ones(2),
        num_tokens=2,
        groups={"term": 0},
    )
    steps = {}
    for scale in (1.0, 5.0):
        torch.manual_seed(0)
        proj = SideProjection(2, 64, scale)
        before = proj(bag).detach()
        assert 0.08 < float(before.std()) < 0.12, scale
        opt = torch.optim.Adam(proj.parameters(), lr=1e-3)
        proj(bag).sum().backward()
        opt.step()
        steps[scale] = (proj(bag).detach() - before).abs().mean().item()
    assert steps[1.0] == pytest.approx(1e-3, rel=1e-2)
    assert steps[5.0] == pytest.approx(5e-3, rel=1e-2)
    with pytest.raises(ValueError, match="scale"):
        SideProjection(2, 4, 0.0)


def test_the_settings_not_the_share_choose_both(data: GraphData) -> None:
    """The relation mean and the side scale are DP-GCN settings: the cold-start share alone
    changes neither (the model before them derived both from it)."""
    torch.manual_seed(0)
    plain = DPGCN(data, dim=8, num_layers=2, cold_simulation=0.5)
    cold = DPGCN(
        data, dim=8, num_layers=2, cold_simulation=0.5, relation_mean="node", side_scale=5.0
    )
    assert plain.gcn.relation_mean == "type" and cold.gcn.relation_mean == "node"
    scales = {
        m: {cast(SideProjection, p).scale for p in m.embedding.projections.values()}
        for m in (plain, cold)
    }
    assert scales[plain] == {1.0} and scales[cold] == {5.0}
    with pytest.raises(ValueError, match="relation_mean"):
        DPGCN(data, dim=8, num_layers=1, relation_mean="sum")


def test_a_simulated_cold_item_is_computed_like_a_cold_item(data: GraphData) -> None:
    """Under the simulation a sampled item's first-layer message is the mean of its category
    and term messages, whatever number of relations an item can have: its layer output
    equals the same model's output for it on a graph where it has no interaction at all."""
    from training.models.dpgcn import drop_interactions

    torch.manual_seed(0)
    model = DPGCN(
        data, dim=8, num_layers=1, id_dropout=0.0, cold_simulation=0.5, relation_mean="node"
    )
    model.eval()
    cold = torch.zeros(model.n_items, dtype=torch.bool)
    cold[[0, 3]] = True
    x = model.inputs(cold=cold)
    from training.sparse import ColdStartStack

    stack = ColdStartStack(model._edges, model._num_nodes, model.stack).without(cold)
    got = model.gcn(x, stack)[ITEM]
    dropped = drop_interactions(model._edges, ~cold, model._num_nodes)
    reference = {et: ei for et, ei in dropped.items() if et[2] == ITEM}
    n = x[ITEM].shape[0]
    msgs = [
        scatter(x[et[0]][ei[0]], ei[1], 0, dim_size=n, reduce="mean")
        for et, ei in reference.items()
    ]
    has = [scatter(torch.ones(ei.shape[1]), ei[1], 0, dim_size=n) > 0 for ei in reference.values()]
    k = torch.stack(has).float().sum(0)
    want = (x[ITEM] + torch.stack(msgs).sum(0) / k.clamp(min=1)[:, None]) / 2
    assert torch.allclose(got[:n], want, atol=1e-5)
    # the sampled items hear only their category and terms (2 relations, not every one)
    assert set(k[cold].tolist()) <= {1.0, 2.0}
