"""DP-GCN's cold-start simulation: a step's sampled items lose their ID vector and their
interaction edges together, so they are computed exactly like items without interactions."""

from __future__ import annotations

from typing import cast

import pytest
import torch
from torch import Tensor

from training.config import TrainConfig
from training.data import ITEM, USER
from training.dataset import GraphData
from training.errors import ConfigError
from training.models import build_model
from training.models.dpgcn import DPGCN, drop_interactions
from training.sparse import ColdStartStack, RelationStack, is_interaction


def _model(data: GraphData, share: float, num_layers: int = 1) -> DPGCN:
    torch.manual_seed(0)
    return DPGCN(data, dim=8, num_layers=num_layers, id_dropout=0.0, cold_simulation=share)


def _only(model: DPGCN, items: list[int]) -> Tensor:
    cold = torch.zeros(model.n_items, dtype=torch.bool)
    cold[items] = True
    return cold


def _users_of(data: GraphData, item: int) -> Tensor:
    ui = data.edge_index_dict[(USER, "__interactions__", ITEM)]
    return ui[0, ui[1] == item].unique()


def test_drop_interactions_keeps_category_and_term_edges(data: GraphData) -> None:
    model = _model(data, 0.5)
    cold = _only(model, [0, 3])
    edges = drop_interactions(model._edges, ~cold, model._num_nodes)
    seen = set()
    for et, ei in edges.items():
        before = model._edges[et]
        item_side = 0 if et[0] == ITEM else 1 if et[2] == ITEM else None
        if item_side is None:
            assert torch.equal(ei, before)
            continue
        touches = cold[before[item_side]]
        if is_interaction(et):
            seen.add(et[1])
            assert not cold[ei[item_side]].any(), et
            assert ei.shape[1] == int((~touches).sum())
        else:  # category and term edges of the cold items stay
            assert torch.equal(ei, before) and touches.any(), et
    # every interaction type and its reverse, and the queries' LED_TO, are covered
    assert {"CLICKED", "rev_CLICKED", "PURCHASED", "VIEWED", "LED_TO", "rev_LED_TO"} <= seen


def test_cold_stack_equals_the_stack_built_without_the_edges(data: GraphData) -> None:
    """The per-step stack (values recomputed over a fixed pattern) is exactly the stack
    ``RelationStack.build`` makes from the dropped edges, with the whole graph's relation
    counts; with no cold item it is the training graph's stack."""
    model = _model(data, 0.5)
    stack = model.stack
    cold_stack = ColdStartStack(model._edges, model._num_nodes, stack)
    for cold in (_only(model, [0, 3, 7]), torch.rand(model.n_items) < 0.5):
        got = cold_stack.without(cold)
        want = RelationStack.build(
            drop_interactions(model._edges, ~cold, model._num_nodes),
            model._num_nodes,
            stack.node_types,
            head_types=list(stack.head_types),
            relation_counts={t: len(r) for t, r in stack.relations.items()},
        )
        assert got.head is not None and want.head is not None
        for a, b in (
            (got.adjacency.matrix, want.adjacency.matrix),
            (got.adjacency.matrix_t, want.adjacency.matrix_t),
            (got.head.matrix, want.head.matrix),
            (got.head.matrix_t, want.head.matrix_t),
        ):
            assert torch.allclose(a.to_dense(), b.to_dense(), atol=1e-7)
    none = cold_stack.without(torch.zeros(model.n_items, dtype=torch.bool))
    dense = stack.adjacency.matrix.to_dense()
    assert torch.allclose(none.adjacency.matrix.to_dense(), dense, atol=1e-7)


def test_a_simulated_cold_item_hears_no_user_in_that_step(data: GraphData) -> None:
    """The sampled item's layer-1 vector receives no message from its users (and none from
    its own ID row): its output does not depend on the user table at all. Without the edge
    drop (ID dropout alone) it does."""
    model = _model(data, 0.5)
    model.train()
    item = 0
    assert len(_users_of(data, item)) > 0
    model.sample_cold = lambda items=None: _only(model, [item])  # type: ignore[method-assign]
    enc = model.encode()
    enc.item[item].sum().backward()
    users = cast(torch.nn.Embedding, model.embedding.tables[USER]).weight.grad
    own = cast(torch.nn.Embedding, model.embedding.tables[ITEM]).weight.grad
    assert users is not None and own is not None
    assert torch.count_nonzero(users) == 0
    assert torch.count_nonzero(own[item]) == 0
    assert model.embedding.unknown[ITEM].grad is not None
    assert torch.count_nonzero(model.embedding.unknown[ITEM].grad) > 0
    # its users do not hear it either: their vectors ignore the item's input row
    model.zero_grad()
    enc = model.encode()
    enc.user[_users_of(data, item)].sum().backward()
    assert model.embedding.unknown[ITEM].grad is None or not torch.count_nonzero(
        model.embedding.unknown[ITEM].grad
    )
    # the same step with the item's ID dropped but its edges kept: the users reach it
    model.zero_grad()
    model.sample_cold = lambda items=None: None  # type: ignore[method-assign]
    x = model.inputs(cold=_only(model, [item]))
    h = model.gcn(x, model.stack)
    h[ITEM][item].sum().backward()
    users = cast(torch.nn.Embedding, model.embedding.tables[USER]).weight.grad
    assert users is not None and torch.count_nonzero(users[_users_of(data, item)]) > 0


def test_share_is_drawn_over_trained_items_in_training_only(data: GraphData) -> None:
    model = _model(data, 0.5)
    model.eval()
    assert model.sample_cold() is None
    model.train()
    torch.manual_seed(1)
    draws = torch.stack([cast(Tensor, model.sample_cold()) for _ in range(200)]).float()
    trained = cast(Tensor, model.embedding.trained_mask(ITEM))[: model.n_items]
    assert draws[:, ~trained].sum() == 0
    assert 0.45 < draws[:, trained].mean() < 0.55


def test_share_zero_gives_the_old_model(data: GraphData) -> None:
    """With ``cold_simulation=0`` a training step is the model without the simulation: the
    same vectors from the same random state, over the unchanged graph, and no extra random
    draw (so a seeded run follows the same trajectory)."""
    model = _model(data, 0.0, num_layers=2)
    model.embedding.id_dropout = 0.3
    model.train()
    torch.manual_seed(5)
    enc = model.encode()
    after = torch.rand(1)
    torch.manual_seed(5)
    h = model.gcn(model.inputs(), model.stack)
    assert torch.equal(torch.rand(1), after)
    assert torch.equal(enc.user, h[USER][: model.n_users])
    assert torch.equal(enc.item, h[ITEM][: model.n_items])
    assert model._cold_stack is None


def test_share_from_train_config(data: GraphData, tiny_config: TrainConfig) -> None:
    for name in ("dpgcn", "dpgcn_no_ddpg", "dgcn"):
        model = build_model(name, data, tiny_config.replace({"model.dpgcn.cold_simulation": 0.25}))
        assert cast(DPGCN, model).cold_simulation == 0.25
    assert TrainConfig.from_json(
        tiny_config.replace({"model.dpgcn.cold_simulation": 0.25}).to_json()
    ) == (tiny_config.replace({"model.dpgcn.cold_simulation": 0.25}))
    with pytest.raises(ConfigError, match="cold_simulation"):
        tiny_config.replace({"model.dpgcn.cold_simulation": 1.0})
    with pytest.raises(ValueError, match="cold_simulation"):
        DPGCN(data, dim=8, num_layers=1, cold_simulation=-0.1)


def test_minibatch_encoding_drops_the_batch_items_edges(data: GraphData) -> None:
    """``encode_batch`` on a "batch" that is the whole graph equals ``encode`` for the same
    sampled items."""
    model = _model(data, 0.5, num_layers=2)
    model.train()
    cold = _only(model, [1, 2, 5])
    model.sample_cold = lambda items=None: cold if items is None else cold[items]  # type: ignore[method-assign]
    n_id = {t: torch.arange(n) for t, n in model._num_nodes.items()}
    whole = model.encode()
    batch = model.encode_batch(n_id, model._edges)
    assert torch.allclose(batch.item[: model.n_items], whole.item, atol=1e-5)
    assert torch.allclose(batch.user[: model.n_users], whole.user, atol=1e-5)
