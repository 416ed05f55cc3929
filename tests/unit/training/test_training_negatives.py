"""Training negatives: drawn from every item, or only from trained items for inductive models."""

from __future__ import annotations

import numpy as np
import torch

from training.config import TrainConfig
from training.data import ExportGraph, sample_negatives
from training.dataset import build_graph_data
from training.loop import negative_pool
from training.models import build_model
from training.splits import split_interactions


def test_pool_limits_the_draw() -> None:
    rng = np.random.default_rng(0)
    users = np.arange(50, dtype=np.int64)
    pool = np.array([3, 7, 11], dtype=np.int64)
    never = lambda u, i: np.zeros(len(u), dtype=bool)  # noqa: E731
    negs = sample_negatives(rng, users, 8, 20, never, pool=pool)
    assert negs.shape == (50, 8) and set(np.unique(negs)) == {3, 7, 11}
    assert len(np.unique(sample_negatives(rng, users, 8, 20, never))) > 3


def test_rejected_draws_stay_in_the_pool() -> None:
    rng = np.random.default_rng(1)
    users = np.zeros(200, dtype=np.int64)
    pool = np.array([1, 2], dtype=np.int64)
    negs = sample_negatives(rng, users, 4, 10, lambda u, i: i == 1, pool=pool)
    assert set(np.unique(negs)) <= {1, 2} and (negs == 2).mean() > 0.99


def test_inductive_models_draw_only_trained_items(
    graph: ExportGraph, tiny_config: TrainConfig
) -> None:
    split = split_interactions(graph, 0, tiny_config.policy.reward_of(), protocol="cold-item")
    data = build_graph_data(split, torch.device("cpu"), tiny_config.model.history_len)
    trained = np.unique(split.train.col)
    assert 0 < len(trained) < split.n_items, "the cold-item split leaves items untrained"
    dpgcn = build_model("dpgcn", data, tiny_config)
    assert dpgcn.inductive
    pool = negative_pool(dpgcn, split)
    assert pool is not None and np.array_equal(pool, trained)
    lightgcn = build_model("lightgcn", data, tiny_config)
    assert negative_pool(lightgcn, split) is None
