"""``TrainConfig.optim.loss``: the sampled-softmax training loss next to the default BCE
(issue 16). The softmax of each positive runs over its own K negatives, laid out as
:func:`training.loop.train_epoch` lays out its pairs; ``"bce"`` keeps the loss it always had;
mini-batch epochs refuse the softmax; DP-GCN's and PNN's search spaces both try it."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
import torch
from torch.nn import functional as F

from training.config import TrainConfig
from training.dataset import GraphData
from training.device import make_grad_scaler
from training.errors import ConfigError, TrainingError
from training.loop import batch_loss, sampled_softmax_loss, train_epoch
from training.minibatch import use_minibatch
from training.models import build_model
from training.models import dpgcn as dpgcn_module
from training.models import pnn as pnn_module

CPU = torch.device("cpu")


def test_sampled_softmax_by_hand() -> None:
    """Two positives with two negatives each: ``[pos_1, pos_2, n_11, n_12, n_21, n_22]``."""
    logits = torch.tensor([2.0, 0.5, 1.0, 0.0, -1.0, 3.0])
    first = -math.log(math.exp(2.0) / (math.exp(2.0) + math.exp(1.0) + math.exp(0.0)))
    second = -math.log(math.exp(0.5) / (math.exp(0.5) + math.exp(-1.0) + math.exp(3.0)))
    assert float(sampled_softmax_loss(logits, 2)) == pytest.approx((first + second) / 2, 1e-6)
    # The negatives belong to their own positive: handing positive 1 the other's changes it.
    swapped = torch.tensor([2.0, 0.5, -1.0, 3.0, 1.0, 0.0])
    assert float(sampled_softmax_loss(swapped, 2)) != pytest.approx((first + second) / 2)


def test_sampled_softmax_refuses_a_ragged_layout() -> None:
    with pytest.raises(TrainingError, match="sampled softmax"):
        sampled_softmax_loss(torch.zeros(6), 4)


def _pairs(data: GraphData, k: int) -> tuple[np.ndarray, np.ndarray, int]:
    rng = np.random.default_rng(0)
    idx = rng.choice(len(data.split.train), 32, replace=False)
    users = data.split.train.row[idx]
    negs = rng.integers(0, data.split.n_items, (len(idx), k))
    pair_u = np.concatenate([users, np.repeat(users, k)])
    pair_i = np.concatenate([data.split.train.col[idx], negs.reshape(-1)])
    return pair_u, pair_i, len(idx)


def test_bce_is_the_default_and_unchanged(data: GraphData, tiny_config: TrainConfig) -> None:
    assert TrainConfig().optim.loss == "bce"
    torch.manual_seed(0)
    model = build_model("pnn", data, tiny_config).eval()
    pair_u, pair_i, n_pos = _pairs(data, 3)
    default = batch_loss(model, pair_u, pair_i, n_pos, None, 0.0, CPU)
    named = batch_loss(model, pair_u, pair_i, n_pos, None, 0.0, CPU, "bce")
    with torch.no_grad():
        enc = model.encode()
        u, i = torch.as_tensor(pair_u), torch.as_tensor(pair_i)
        labels = torch.zeros(len(pair_u))
        labels[:n_pos] = 1.0
        expected = F.binary_cross_entropy_with_logits(model.score(enc, u, i).float(), labels)
        penalty = model.penalty(enc, u, i)
    if penalty is not None:
        expected = expected + penalty
    assert torch.equal(default, named)
    assert float(default.detach()) == pytest.approx(float(expected), 1e-6)
    softmax = batch_loss(model, pair_u, pair_i, n_pos, None, 0.0, CPU, "softmax")
    assert float(softmax.detach()) != pytest.approx(float(default.detach()))


@pytest.mark.parametrize("name", ["pnn", "dpgcn"])
def test_softmax_training_lowers_the_loss(
    data: GraphData, tiny_config: TrainConfig, name: str
) -> None:
    config = tiny_config.replace(
        {"model.name": name, "optim.loss": "softmax", "optim.num_negatives": 4, "optim.lr": 1e-2}
    )
    torch.manual_seed(0)
    model = build_model(name, data, config)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.optim.lr)
    rng = np.random.default_rng(0)
    scaler = make_grad_scaler(CPU, False)
    losses = [
        train_epoch(model, data.split, config, optimizer, rng, CPU, scaler, False) for _ in range(5)
    ]
    assert all(math.isfinite(x) for x in losses)
    assert losses[-1] < losses[0]


@pytest.mark.parametrize(
    "changes",
    [{"optim.batching": "minibatch"}, {"optim.batching": "auto", "optim.minibatch_min_edges": 0}],
)
def test_minibatch_refuses_softmax(
    data: GraphData, tiny_config: TrainConfig, changes: dict[str, object]
) -> None:
    config = tiny_config.replace({"model.name": "dpgcn", **changes})
    model = build_model("dpgcn", data, config)
    assert use_minibatch(model, len(data.split.train), config)  # BCE: mini-batches as before
    softmax = config.replace({"optim.loss": "softmax"})
    with pytest.raises(ConfigError, match=r"optim\.loss='softmax'"):
        use_minibatch(model, len(data.split.train), softmax)
    full = softmax.replace({"optim.batching": "full"})
    assert not use_minibatch(model, len(data.split.train), full)


def test_unknown_loss_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"optim\.loss"):
        TrainConfig().replace({"optim.loss": "hinge"})


@pytest.mark.parametrize("module", [dpgcn_module, pnn_module])
def test_search_spaces_try_the_loss(module: object) -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(12):
        trial = study.ask()
        space = module.search_space(trial)  # type: ignore[attr-defined]
        seen.add(space["optim.loss"])
        TrainConfig().replace(space)  # every proposal is a valid config
        study.tell(trial, 0.0)
    assert seen == {"bce", "softmax"}
