"""The full-batch / mini-batch switch of ``fit`` and a mini-batch fit learning a planted signal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from export_factory import write_random_export

from training.config import TrainConfig
from training.data import load_export
from training.dataset import GraphData
from training.errors import ConfigError
from training.loop import fit
from training.minibatch import supports_minibatch, use_minibatch
from training.models import build_model
from training.splits import split_interactions
from training.train import evaluate_fit


@pytest.mark.parametrize(
    ("batching", "threshold", "n_train", "expected"),
    [
        ("auto", 1000, 999, False),  # below the threshold: full-batch
        ("auto", 1000, 1000, True),  # at or above: mini-batch
        ("full", 10, 10_000, False),
        ("minibatch", 10**9, 5, True),
    ],
)
def test_switch_picks_the_path(
    data: GraphData,
    tiny_config: TrainConfig,
    batching: str,
    threshold: int,
    n_train: int,
    expected: bool,
) -> None:
    config = tiny_config.replace(
        {"optim.batching": batching, "optim.minibatch_min_edges": threshold}
    )
    model = build_model("dpgcn", data, config)
    assert use_minibatch(model, n_train, config) is expected


def test_auto_keeps_full_batch_for_models_without_a_minibatch_path(
    data: GraphData, tiny_config: TrainConfig
) -> None:
    config = tiny_config.replace({"model.name": "lightgcn", "optim.minibatch_min_edges": 0})
    model = build_model("lightgcn", data, config)
    assert not supports_minibatch(model)
    assert use_minibatch(model, 10**6, config) is False
    with pytest.raises(ConfigError, match="lightgcn"):
        use_minibatch(model, 10, config.replace({"optim.batching": "minibatch"}))


def test_fit_reports_the_path_it_took(data: GraphData, tiny_config: TrainConfig) -> None:
    config = tiny_config.replace(
        {"optim.epochs": 1, "optim.minibatch_min_edges": 0, "policy": tiny_config.policy}
    )
    mini = fit(data.split, config.replace({"model.name": "dpgcn_no_ddpg"}))
    full = fit(
        data.split, config.replace({"model.name": "dpgcn_no_ddpg", "optim.batching": "full"})
    )
    assert (mini.batching, full.batching) == ("minibatch", "full")
    assert len(mini.history) == len(full.history) == 1


def test_minibatch_epoch_adds_the_model_penalty(
    data: GraphData, tiny_config: TrainConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mini-batch path calls ``RecModel.penalty`` on each batch's pairs, and the penalty
    enters the loss."""
    from training.models.dpgcn import DPGCN

    calls: list[int] = []

    def penalty(self: Any, enc: Any, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        calls.append(len(users))
        assert users.max() < len(enc.user) and items.max() < len(enc.item)
        return torch.tensor(100.0)

    monkeypatch.setattr(DPGCN, "penalty", penalty)
    config = tiny_config.replace(
        {"model.name": "dpgcn_no_ddpg", "optim.epochs": 1, "optim.batching": "minibatch"}
    )
    result = fit(data.split, config)
    assert calls, "penalty never called"
    assert result.history[0]["loss"] > 100.0


def test_minibatch_fit_learns_a_planted_signal(tmp_path: Path) -> None:
    """Users prefer the items of their latent cluster (80 % of their interactions); DP-GCN
    trained on mini-batches ranks held-out items far better than popularity does."""
    export = write_random_export(
        tmp_path / "planted", n_users=240, n_items=120, interactions_per_user=14, seed=5
    )
    graph = load_export(export)
    config = TrainConfig().replace(
        {
            "model.dim": 16,
            "optim.epochs": 12,
            "optim.patience": 0,
            "optim.batch_size": 256,
            "model.mlp_hidden": (16,),
            "eval.protocol": "ratio-random",
            "optim.batching": "minibatch",
            "optim.fanout": (8, 4),
            "eval.top_k": (10,),
            "eval.select_metric": "ndcg@10",
        }
    )
    split = split_interactions(
        graph,
        0,
        config.policy.reward_of(),
        protocol=config.eval.protocol,
        ratios=config.eval.ratios,
    )
    scores = {}
    for model in ("popularity", "dpgcn_no_ddpg"):
        result = fit(split, config.replace({"model.name": model}))
        scores[model] = evaluate_fit(result, "test")["ndcg@10"]
        if model == "dpgcn_no_ddpg":
            assert result.batching == "minibatch"
    assert scores["dpgcn_no_ddpg"] > 3 * scores["popularity"], scores
