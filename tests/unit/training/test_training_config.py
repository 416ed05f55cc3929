from __future__ import annotations

import pytest

from training.config import DDPGConfig, TrainConfig
from training.errors import ConfigError, TrainingError


def test_json_round_trip_keeps_types() -> None:
    cfg = TrainConfig(dim=16, top_k=(3, 7), ddpg=DDPGConfig(tau=0.5, alpha_grid=(0.0, 2.0)))
    back = TrainConfig.from_json(cfg.to_json())
    assert back == cfg
    assert isinstance(back.top_k, tuple) and isinstance(back.ddpg, DDPGConfig)
    assert back.rewards == cfg.rewards


def test_defaults_follow_the_contract() -> None:
    cfg = TrainConfig()
    assert cfg.model == "dpgcn" and cfg.dim == 64 and cfg.device == "auto"
    with pytest.raises(AttributeError):
        cfg.dim = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "change",
    [
        {"dim": 0},
        {"lr": 0.0},
        {"dropout": 1.0},
        {"device": "tpu"},
        {"min_interactions": 2},
        {"select_metric": "ndcg"},
        {"select_metric": "loss@3"},
        {"protocol": "random"},
        {"ratios": (0.8, 0.1, 0.2)},
        {"cold_share": 0.5},
        {"batching": "sometimes"},
        {"minibatch_min_edges": -1},
        {"fanout": ()},
        {"fanout": (10, 0)},
        {"fanout": (-2,)},
        {"checkpoint_interval_s": -1.0},
        {"checkpoint_interval_s": float("nan")},
    ],
)
def test_invalid_values_raise(change: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        TrainConfig(**change)  # type: ignore[arg-type]


def test_unknown_field_and_bad_json() -> None:
    with pytest.raises(ConfigError, match="nonsense"):
        TrainConfig.from_json('{"nonsense": 1}')
    with pytest.raises(TrainingError):
        TrainConfig.from_json("{not json")


def test_minibatch_settings_round_trip_and_fanout_per_layer() -> None:
    cfg = TrainConfig(batching="minibatch", fanout=(15, -1), checkpoint_interval_s=0.0)
    back = TrainConfig.from_json(cfg.to_json())
    assert back == cfg and isinstance(back.fanout, tuple)
    assert cfg.replace(num_layers=3).fanout_per_layer() == [15, -1, -1]
    assert cfg.replace(num_layers=1).fanout_per_layer() == [15]
    defaults = TrainConfig()
    assert defaults.batching == "auto" and defaults.checkpoint_interval_s == 60.0
    assert TrainConfig.from_dict({}).minibatch_min_edges == defaults.minibatch_min_edges
