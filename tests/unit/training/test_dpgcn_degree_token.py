"""DP-GCN's training-degree token (``model.dpgcn.degree_token``): buckets of
``log2(1 + training interactions)`` counted on the training pairs only, one more token group of
the item side bag; off by default (outputs unchanged), on it separates items of different
degrees and gives items computed as cold bucket 0's vector."""

from __future__ import annotations

import dataclasses
from typing import cast

import numpy as np
import optuna
import torch

from training.config import TrainConfig
from training.data import ITEM
from training.dataset import GraphData
from training.models import build_model
from training.models.dpgcn import DPGCN, item_degree, node_keys, search_space
from training.models.node_embedding import (
    DEGREE_GROUP,
    SideProjection,
    bag_rows,
    degree_buckets,
    with_degree_group,
)


def _model(data: GraphData, config: TrainConfig, on: bool | None) -> DPGCN:
    torch.manual_seed(0)
    changes: dict[str, object] = {"model.dpgcn.cold_simulation": 0.0}
    if on is not None:
        changes["model.dpgcn.degree_token"] = on
    return cast(DPGCN, build_model("dpgcn", data, config.replace(changes))).eval()


def test_buckets_are_log2_of_one_plus_the_count() -> None:
    cols = torch.tensor([1] + [2] * 2 + [3] * 3 + [4] * 7 + [5] * 14 + [6] * 15)
    assert degree_buckets(cols, 8).tolist() == [0, 1, 1, 2, 3, 3, 4, 0]


def test_buckets_count_the_training_pairs_only(data: GraphData) -> None:
    split = data.split
    want = np.floor(np.log2(1 + np.bincount(split.train.col, minlength=split.n_items)))
    assert item_degree(data)[ITEM].tolist() == want.astype(int).tolist()
    # validation and test pairs of items never trained on would raise their bucket if counted
    assert len(split.val) and len(split.test)
    heavier = dataclasses.replace(
        split,
        val=dataclasses.replace(split.val, col=np.zeros_like(split.val.col)),
        test=dataclasses.replace(split.test, col=np.zeros_like(split.test.col)),
    )
    moved = dataclasses.replace(data, split=heavier)
    assert item_degree(moved)[ITEM].tolist() == want.astype(int).tolist()
    # the training pairs are what counts
    trained_more = dataclasses.replace(
        split, train=dataclasses.replace(split.train, col=np.zeros_like(split.train.col))
    )
    counted = item_degree(dataclasses.replace(data, split=trained_more))[ITEM]
    assert counted[0] == int(np.log2(1 + len(split.train))) and int(counted[1:].sum()) == 0


def test_the_degree_is_one_more_side_token(data: GraphData) -> None:
    bag = data.side[ITEM]
    buckets = item_degree(data)[ITEM]
    both = with_degree_group(bag, buckets)
    assert both.groups == {**bag.groups, DEGREE_GROUP: bag.num_tokens}
    assert both.num_tokens == bag.num_tokens + int(buckets.max()) + 1
    rows = torch.arange(data.n_items)
    old_tok, old_off, _ = bag_rows(bag, rows)
    new_tok, new_off, new_w = bag_rows(both, rows)
    assert len(new_tok) == len(old_tok) + data.n_items
    for v in range(data.n_items):  # each bag: its own tokens, then its degree token (weight 1)
        end = old_off[v + 1] if v + 1 < data.n_items else len(old_tok)
        start_new, own = int(new_off[v]), int(end - old_off[v])
        assert new_tok[start_new : start_new + own].tolist() == old_tok[old_off[v] : end].tolist()
        assert int(new_tok[start_new + own]) == bag.num_tokens + int(buckets[v])
        assert float(new_w[start_new + own]) == 1.0
    alone = with_degree_group(None, buckets)
    assert alone.tokens.tolist() == buckets.tolist() and alone.groups == {DEGREE_GROUP: 0}


def test_off_by_default_and_identical(data: GraphData, tiny_config: TrainConfig) -> None:
    assert TrainConfig().model.dpgcn.degree_token is False
    default, off = _model(data, tiny_config, None), _model(data, tiny_config, False)
    assert default.embedding.degree_types == []
    a, b = default.encode(), off.encode()
    torch.testing.assert_close(a.user, b.user, rtol=0, atol=0)
    torch.testing.assert_close(a.item, b.item, rtol=0, atol=0)
    assert set(default.state_dict()) == set(off.state_dict())
    keys = node_keys(data)
    assert all(np.array_equal(keys[k], v) for k, v in default.state_keys(data).items())


def test_on_separates_items_of_different_degrees(data: GraphData, tiny_config: TrainConfig) -> None:
    model = _model(data, tiny_config, True)
    buckets = cast(torch.Tensor, model.embedding.degree_Item)
    assert len(set(buckets.tolist())) >= 2
    proj = cast(SideProjection, model.embedding.projections[ITEM])
    first = model.embedding.side[ITEM].groups[DEGREE_GROUP]
    with torch.no_grad():  # the side vectors alone: only the degree tokens differ
        proj.bag.weight[:first] = 0.0
    x = model.embedding()[ITEM][: data.n_items]
    side = x - model.embedding.tables[ITEM].weight[: data.n_items]
    side = torch.where(
        model.embedding.trained_mask(ITEM)[: data.n_items, None],
        side,
        x - model.embedding.unknown[ITEM],
    )
    for b in set(buckets.tolist()):
        torch.testing.assert_close(
            side[buckets == b], proj.bag.weight[first + b].expand_as(side[buckets == b])
        )
    lo, hi = buckets.min(), buckets.max()
    assert not torch.allclose(proj.bag.weight[first + lo], proj.bag.weight[first + hi])
    # the token keys name the degree buckets (checkpoint transfer)
    keys = model.state_keys(data)["side.Item"]
    assert len(keys) == proj.num_tokens and keys[first] == "degree:0"


def test_items_computed_as_cold_take_bucket_zero(data: GraphData, tiny_config: TrainConfig) -> None:
    model = _model(data, tiny_config, True)
    buckets = cast(torch.Tensor, model.embedding.degree_Item)
    n = model.embedding.num_nodes[ITEM]
    cold = torch.zeros(n, dtype=torch.bool)
    warm_item = int(torch.nonzero(buckets > 0)[0])
    cold[warm_item] = True
    x = model.embedding(cold={ITEM: cold})[ITEM]
    # the same item with its training pairs gone (bucket 0, no ID): the same input vector
    as_cold = model.embedding.degree_Item.clone()
    as_cold[warm_item] = 0
    model.embedding.degree_Item = as_cold
    bag = with_degree_group(data.side[ITEM], as_cold)
    model.embedding.side[ITEM] = bag
    y = model.embedding(cold={ITEM: cold})[ITEM]
    torch.testing.assert_close(x, y)
    # rows: the same vectors for the listed rows
    rows = torch.tensor([warm_item, 0])
    z = model.embedding({ITEM: rows}, cold={ITEM: cold[rows]})[ITEM]
    torch.testing.assert_close(z, y[rows])


def test_the_search_space_tries_both() -> None:
    trial = optuna.create_study().ask()
    assert search_space(trial)["model.dpgcn.degree_token"] in (False, True)
    dist = trial.distributions["model.dpgcn.degree_token"]
    assert isinstance(dist, optuna.distributions.CategoricalDistribution)
    assert tuple(dist.choices) == (False, True)
