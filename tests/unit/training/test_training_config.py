from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from training.config import (
    SECTIONS,
    EvalConfig,
    ModelConfig,
    OptimConfig,
    PolicyConfig,
    TrainConfig,
)
from training.config_paths import LEGACY_PATHS, MOVED_PATHS, config_paths
from training.errors import ConfigError, TrainingError
from training.tuning import load_tuned

ROOT = Path(__file__).resolve().parents[3]


def test_json_round_trip_keeps_types() -> None:
    cfg = TrainConfig().replace(
        {
            "model.dim": 16,
            "eval.top_k": (3, 7),
            "policy.tau": 0.5,
            "policy.alpha_grid": (0.0, 2.0),
            "seed": 3,
        }
    )
    back = TrainConfig.from_json(cfg.to_json())
    assert back == cfg
    assert isinstance(back.eval.top_k, tuple) and isinstance(back.policy, PolicyConfig)
    assert back.policy.rewards == cfg.policy.rewards and back.seed == 3
    assert set(json.loads(cfg.to_json())) == {"seed", "device", *SECTIONS}


def test_defaults_follow_the_contract() -> None:
    cfg = TrainConfig()
    assert cfg.model.name == "dpgcn" and cfg.model.dim == 64 and cfg.device == "auto"
    assert isinstance(cfg.model, ModelConfig) and isinstance(cfg.optim, OptimConfig)
    assert isinstance(cfg.eval, EvalConfig) and cfg.serving.cold_start_k == 10
    with pytest.raises(ValidationError):
        cfg.seed = 3  # type: ignore[misc]
    with pytest.raises(ValidationError):
        cfg.model.dim = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"model.dim": 0}, "model.dim"),
        ({"optim.lr": 0.0}, "optim.lr"),
        ({"model.dropout": 1.0}, "model.dropout"),
        ({"device": "tpu"}, "device"),
        ({"eval.min_interactions": 2}, "eval.min_interactions"),
        ({"eval.select_metric": "ndcg"}, "eval.select_metric"),
        ({"eval.select_metric": "loss@3"}, "eval.select_metric"),
        ({"eval.protocol": "random"}, "eval.protocol"),
        ({"eval.ratios": (0.8, 0.1, 0.2)}, "eval.ratios"),
        ({"eval.cold_share": 0.5}, "eval.cold_share"),
        ({"optim.batching": "sometimes"}, "optim.batching"),
        ({"optim.minibatch_min_edges": -1}, "optim.minibatch_min_edges"),
        ({"optim.fanout": ()}, "optim.fanout"),
        ({"optim.fanout": (10, 0)}, "optim.fanout"),
        ({"optim.fanout": (-2,)}, "optim.fanout"),
        ({"optim.fanout_per": "node"}, "optim.fanout_per"),
        ({"optim.checkpoint_interval_s": -1.0}, "optim.checkpoint_interval_s"),
        ({"optim.checkpoint_interval_s": float("nan")}, "optim.checkpoint_interval_s"),
        ({"model.dpgcn.cold_simulation": 1.0}, "model.dpgcn.cold_simulation"),
        ({"policy.noise": "pink"}, "policy.noise"),
        ({"policy.tau": 0.0}, "policy.tau"),
        ({"serving.cold_start_k": 0}, "serving.cold_start_k"),
        ({"eval.sampled_candidates": 1}, "eval.sampled_candidates"),
    ],
)
def test_invalid_values_raise_naming_the_path(change: dict[str, object], path: str) -> None:
    with pytest.raises(ConfigError, match=rf"^TrainConfig\.{path} "):
        TrainConfig().replace(change)


def test_a_positive_setting_says_so() -> None:
    with pytest.raises(ConfigError, match=r"TrainConfig\.optim\.lr must be positive, got 0\.0"):
        TrainConfig().replace({"optim.lr": 0.0})


def test_unknown_settings_and_bad_json() -> None:
    with pytest.raises(ConfigError, match="nonsense"):
        TrainConfig.from_json('{"nonsense": 1}')
    with pytest.raises(ConfigError, match=r"TrainConfig\.optim\.lrr"):
        TrainConfig().replace({"optim.lrr": 1.0})
    with pytest.raises(ConfigError, match=r"TrainConfig\.optim\.nonsense"):
        TrainConfig.from_json('{"optim": {"nonsense": 1}}')
    with pytest.raises(TrainingError):
        TrainConfig.from_json("{not json")
    with pytest.raises(ConfigError, match="must be an object"):
        TrainConfig.from_json("[1]")


def test_replace_takes_dotted_paths_and_whole_sections() -> None:
    cfg = TrainConfig().replace({"optim.lr": 1e-3, "model.name": "gcn", "seed": 2})
    assert (cfg.optim.lr, cfg.model.name, cfg.seed) == (1e-3, "gcn", 2)
    assert cfg.get("optim.lr") == 1e-3 and cfg.get("seed") == 2
    policy = PolicyConfig(steps=3)
    assert cfg.replace({"policy": policy}).policy == policy
    assert cfg.replace({"policy": {"steps": 4}}).policy.steps == 4
    # the other settings are left as they were
    assert cfg.replace({"policy": policy}).optim.lr == 1e-3
    assert TrainConfig().replace({}) == TrainConfig()


def test_minibatch_settings_round_trip_and_fanout_per_layer() -> None:
    cfg = TrainConfig().replace(
        {
            "optim.batching": "minibatch",
            "optim.fanout": (15, -1),
            "optim.checkpoint_interval_s": 0.0,
        }
    )
    back = TrainConfig.from_json(cfg.to_json())
    assert back == cfg and isinstance(back.optim.fanout, tuple)
    assert cfg.replace({"model.num_layers": 3}).fanout_per_layer() == [15, -1, -1]
    assert cfg.replace({"model.num_layers": 1}).fanout_per_layer() == [15]
    defaults = TrainConfig()
    assert defaults.optim.batching == "auto" and defaults.optim.checkpoint_interval_s == 60.0
    assert TrainConfig.from_dict({}) == defaults
    assert TrainConfig.from_dict({"optim": {"lr": 0.1}}).optim == OptimConfig(lr=0.1)


#: A checkpoint's / model dir's train_config.json as written before the sections.
FLAT = {
    "model": "dgcn",
    "dim": 16,
    "num_layers": 1,
    "epochs": 7,
    "lr": 0.01,
    "protocol": "ratio-random",
    "ratios": [0.7, 0.15, 0.15],
    "eval_max_users": 300,
    "top_k": [5, 10],
    "rewards": [["CLICKED", 1.0], ["PURCHASED", 3.0]],
    "cold_start_k": 4,
    "cold_simulation": 0.25,
    "seed": 2,
    "device": "cpu",
    "ddpg": {"steps": 5, "alpha_grid": [0.0, 0.5], "noise": "ou"},
}


def test_flat_json_of_before_the_sections_is_read_through_one_migration() -> None:
    cfg = TrainConfig.from_json(json.dumps(FLAT))
    assert (cfg.model.name, cfg.model.dim, cfg.model.num_layers) == ("dgcn", 16, 1)
    assert (cfg.optim.epochs, cfg.optim.lr) == (7, 0.01)
    assert cfg.eval.protocol == "ratio-random" and cfg.eval.ratios == (0.7, 0.15, 0.15)
    assert cfg.eval.max_users == 300 and cfg.eval.top_k == (5, 10)
    assert cfg.policy.rewards == (("CLICKED", 1.0), ("PURCHASED", 3.0))
    assert (cfg.policy.steps, cfg.policy.alpha_grid, cfg.policy.noise) == (5, (0.0, 0.5), "ou")
    assert cfg.serving.cold_start_k == 4 and cfg.model.dpgcn.cold_simulation == 0.25
    assert (cfg.seed, cfg.device) == (2, "cpu")
    # and it is the same configuration as the one written with sections today
    assert TrainConfig.from_json(cfg.to_json()) == cfg
    assert config_paths(TrainConfig, FLAT) == {
        k: v for k, v in cfg.to_paths().items() if k in config_paths(TrainConfig, FLAT)
    }


def test_every_flat_name_has_a_path_today() -> None:
    defaults = TrainConfig()
    for name, path in LEGACY_PATHS.items():
        assert path.partition(".")[0] in SECTIONS, name
        defaults.get(MOVED_PATHS.get(path, path))  # ConfigError for a path that does not exist
    for old, new in MOVED_PATHS.items():
        defaults.get(new)
        with pytest.raises(ConfigError, match="unknown setting"):
            defaults.get(old)


def test_committed_tuned_files_still_load() -> None:
    """``tuned.json`` files under docs/results/ (flat names or paths) give valid changes."""
    files = sorted((ROOT / "docs" / "results").rglob("tuned.json"))
    if not files:
        pytest.skip("no committed tuned.json")
    for path in files:
        for name, changes in load_tuned(path).items():
            cfg = TrainConfig().replace({"model.name": name, **changes})
            assert all("." in key for key in changes), (path, name, changes)
            assert cfg.model.name == name
