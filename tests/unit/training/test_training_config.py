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
