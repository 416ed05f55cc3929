"""Equal-budget tuning (training/tuning.py, dpgcn tune, dpgcn evaluate --tuned) on a tiny
export: the same trial count per model, params inside each model's search space, pruning, and
the best config applied by evaluate."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import optuna
import pytest
from typer.testing import CliRunner

import training.evaluate as evaluate_module
from training.config import TrainConfig
from training.errors import ConfigError
from training.evaluate import evaluate
from training.tuning import (
    PRUNER_MIN_BUDGET,
    PRUNING,
    TUNED_FILE,
    load_tuned,
    search_space_of,
    tunable,
    tune,
)


def test_every_model_gets_the_same_trials_inside_its_space(
    export_dir: Path, tmp_path: Path, tiny_config: TrainConfig
) -> None:
    events: list[dict[str, Any]] = []
    out = tune(
        export_dir,
        ["lightgcn", "gcn"],
        trials=3,
        config=tiny_config.replace({"optim.epochs": 3, "optim.patience": 0}),
        out_path=tmp_path / TUNED_FILE,
        progress=events.append,
    )
    assert list(out["models"]) == ["lightgcn", "gcn"]
    assert {m: e["trials"] for m, e in out["models"].items()} == {"lightgcn": 3, "gcn": 3}
    assert [e["trial"] for e in events] == [1, 2, 3, 1, 2, 3]
    for name, entry in out["models"].items():
        params = entry["params"]
        assert 1e-4 <= params["optim.lr"] <= 3e-2 and 1e-8 <= params["optim.weight_decay"] <= 1e-3
        assert params["model.dim"] in (32, 64, 128) and 1 <= params["optim.num_negatives"] <= 32
        assert 1 <= params["model.num_layers"] <= (4 if name == "lightgcn" else 3)
        assert ("model.dropout" in params) == (name == "gcn")
        assert 0.0 <= entry["value"] <= 1.0
        # the first trial is the shared default configuration; the best is never below it
        assert entry["default_params"]["optim.lr"] == tiny_config.optim.lr
        # a weight decay of 0 is clamped into the log range
        assert entry["default_params"]["optim.weight_decay"] == 1e-8
        assert entry["value"] >= entry["default_value"]
    assert json.loads((tmp_path / TUNED_FILE).read_text()) == json.loads(json.dumps(out))


def test_trials_are_halved_on_the_training_budget(
    export_dir: Path, tmp_path: Path, tiny_config: TrainConfig
) -> None:
    # the default pruner: successive halving, values reported at epoch x (1 + negatives)
    storage = tmp_path / "studies"
    out = tune(
        export_dir,
        ["lightgcn"],
        trials=8,
        config=tiny_config.replace({"optim.epochs": 12, "optim.patience": 0}),
        storage_dir=storage,
    )
    entry = out["models"]["lightgcn"]
    assert entry["trials"] == 8 and entry["pruned"] >= 1
    assert entry["complete"] + entry["pruned"] + entry["failed"] == 8
    study = _stored_study(storage, "lightgcn")
    for t in study.trials:
        pairs = 1 + t.params["optim.num_negatives"]
        steps = sorted(t.intermediate_values)
        assert steps == [pairs * (k + 1) for k in range(len(steps))]
        if t.state == optuna.trial.TrialState.PRUNED:
            # judged only once its budget reached a rung (16, 48, ... pairs per positive)
            assert steps[-1] >= PRUNER_MIN_BUDGET
    assert study.user_attrs["settings"]["pruning"] == PRUNING
    # the first trial (the defaults) is alone at every rung: never pruned
    assert study.trials[0].state == optuna.trial.TrialState.COMPLETE


def test_a_study_of_another_pruning_rule_is_not_resumed(
    export_dir: Path, tmp_path: Path, tiny_config: TrainConfig
) -> None:
    config = tiny_config.replace({"optim.epochs": 2, "optim.patience": 0})
    storage = tmp_path / "studies"
    tune(export_dir, ["lightgcn"], 1, config=config, storage_dir=storage,
         pruner=optuna.pruners.MedianPruner())  # fmt: skip
    with pytest.raises(ConfigError, match=r"pruned by another rule \(MedianPruner/pairs, now"):
        tune(export_dir, ["lightgcn"], 2, config=config, storage_dir=storage)
    # a study stored before the rule was recorded was pruned by the median rule on epochs
    study = _stored_study(storage, "lightgcn")
    attrs = study.user_attrs["settings"]
    del attrs["pruning"]
    study.set_user_attr("settings", attrs)
    with pytest.raises(ConfigError, match=r"median/epochs"):
        tune(export_dir, ["lightgcn"], 2, config=config, storage_dir=storage)


def test_every_trainable_dot_and_network_model_has_a_space() -> None:
    names = tunable()
    for name in ("lightgcn", "lightgcn_pyg", "gcn", "dpgcn", "dgcn", "embedding_mlp", "din"):
        assert name in names
    with pytest.raises(ConfigError, match="declares no search space"):
        search_space_of("popularity")
    # every space gives TrainConfig settings (dotted paths) with valid values
    trial = optuna.trial.FixedTrial(
        {
            "optim.lr": 1e-3,
            "optim.weight_decay": 1e-6,
            "model.dim": 32,
            "model.num_layers": 2,
            "model.dropout": 0.1,
            "optim.num_negatives": 3,
            "model.dpgcn.cold_simulation": 0.2,
            "model.dpgcn.relation_mean": "node",
            "model.dpgcn.side_scale": 5.0,
            "model.dpgcn.id_dropout": 0.2,
        }
    )
    for name in names:
        TrainConfig().replace({"model.name": name, **search_space_of(name)(trial)})


def test_negatives_range_reaches_past_eight() -> None:
    # 16 negatives per positive is inside every space (with the old 1-8 range Optuna warned
    # that it was out of range, and TPE could never propose it)
    trial = optuna.trial.FixedTrial(
        {
            "optim.lr": 1e-3,
            "optim.weight_decay": 1e-6,
            "model.dim": 32,
            "model.num_layers": 2,
            "model.dropout": 0.1,
            "model.dpgcn.cold_simulation": 0.5,
            "model.dpgcn.relation_mean": "type",
            "model.dpgcn.side_scale": 1.0,
            "model.dpgcn.id_dropout": 0.1,
            "optim.num_negatives": 16,
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in tunable():
            assert search_space_of(name)(trial)["optim.num_negatives"] == 16


def test_best_config_round_trips_into_evaluate(
    export_dir: Path, tmp_path: Path, tiny_config: TrainConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / TUNED_FILE
    tune(
        export_dir,
        ["lightgcn"],
        trials=2,
        config=tiny_config.replace({"optim.epochs": 2, "optim.patience": 0}),
        out_path=path,
    )
    configs = load_tuned(path)
    best = configs["lightgcn"]
    seen: list[TrainConfig] = []
    real_fit = evaluate_module.fit

    def recording_fit(split: Any, config: TrainConfig, *args: Any) -> Any:
        seen.append(config)
        return real_fit(split, config, *args)

    monkeypatch.setattr(evaluate_module, "fit", recording_fit)
    evaluate(
        export_dir,
        tmp_path / "reports",
        models=["lightgcn", "popularity"],
        seeds=(0,),
        config=tiny_config.replace({"optim.epochs": 2}),
        tuned=configs,
    )
    by_model = {c.model.name: c for c in seen}
    for key, value in best.items():
        assert by_model["lightgcn"].get(key) == value
    # no tuned entry: the shared settings
    assert by_model["popularity"].optim.lr == tiny_config.optim.lr
    run = json.loads((tmp_path / "reports" / "runs" / "lightgcn.seed0.json").read_text())
    assert run["settings"]["tuned"] == {"lightgcn": best}

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"models": {"lightgcn": {"params": {"learning_rate": 1}}}}))
    with pytest.raises(ConfigError, match=r"bad\.json: model 'lightgcn'.*learning_rate"):
        load_tuned(bad)


def test_cli_tune_then_evaluate_tuned(export_dir: Path, tmp_path: Path) -> None:
    from dpgcn.cli import app

    runner = CliRunner()
    common = ["--export-dir", str(export_dir), "--reuse-export", "--out", str(tmp_path)]
    result = runner.invoke(
        app, ["tune", "--models", "lightgcn", "--trials", "2", "--epochs", "2", *common]
    )
    assert result.exit_code == 0, result.output
    report = tmp_path / "movielens" / "leave-last-out"
    assert "lightgcn trial 2/2" in result.output
    assert json.loads((report / TUNED_FILE).read_text())["models"]["lightgcn"]["trials"] == 2
    assert (report / "tuned.md").read_text().startswith("| model | default val ndcg@10 | best val")
    evaluate_args = ["evaluate", "--dataset", "movielens", "--models", "lightgcn", "--seeds", "1"]
    result = runner.invoke(app, [*evaluate_args, "--epochs", "2", "--tuned", *common])
    assert result.exit_code == 0, result.output
    run = json.loads((report / "tuned" / "runs" / "lightgcn.seed0.json").read_text())
    assert run["settings"]["tuned"]["lightgcn"] == load_tuned(report / TUNED_FILE)["lightgcn"]


def _stored_study(storage: Path, model: str) -> Any:
    name = f"{model}.leave-last-out.seed0"
    backend = optuna.storages.journal.JournalFileBackend(str(storage / f"{name}.journal"))
    return optuna.load_study(study_name=name, storage=optuna.storages.JournalStorage(backend))


class _Killed(Exception):
    """Stands for a process killed between two trials."""


def test_a_stored_study_resumes_to_the_same_budget(
    export_dir: Path, tmp_path: Path, tiny_config: TrainConfig
) -> None:
    # dim 32 is one of the space's choices: the default trial fixes every parameter
    config = tiny_config.replace({"optim.epochs": 2, "optim.patience": 0, "model.dim": 32})
    storage, path = tmp_path / "studies", tmp_path / TUNED_FILE
    events: list[dict[str, Any]] = []

    def killed_after_two(event: dict[str, Any]) -> None:
        events.append(event)
        if event["trial"] == 2:
            raise _Killed

    with pytest.raises(_Killed):
        tune(export_dir, ["lightgcn"], 5, config=config, storage_dir=storage,
             out_path=path, progress=killed_after_two)  # fmt: skip
    # a call whose stop time has passed runs nothing and names the study unfinished
    out = tune(export_dir, ["lightgcn", "gcn"], 5, config=config, storage_dir=storage,
               out_path=path, stop_after=1e-9)  # fmt: skip
    assert out["unfinished"] == ["lightgcn", "gcn"] and out["models"] == {}
    out = tune(export_dir, ["lightgcn"], 5, config=config, storage_dir=storage,
               out_path=path, progress=events.append)  # fmt: skip
    assert [e["trial"] for e in events] == [1, 2, 3, 4, 5]
    entry = out["models"]["lightgcn"]
    assert entry["trials"] == 5 and entry["complete"] + entry["pruned"] == 5
    assert entry["interrupted"] == 0 and "unfinished" not in out
    study = _stored_study(storage, "lightgcn")
    params = [t.params for t in study.trials]
    assert len(params) == 5
    # the default configuration ran once (first), and the resumed sampler drew new configs
    assert (
        sum(p["optim.lr"] == tiny_config.optim.lr for p in params) == 1
        and params[0]["optim.lr"] == tiny_config.optim.lr
    )
    assert len({json.dumps(p, sort_keys=True) for p in params}) == 5
    assert entry["seconds"] == pytest.approx(
        sum(t.duration.total_seconds() for t in study.trials), abs=0.2
    )
    # a per-model call adds its model to the same tuned.json
    out = tune(export_dir, ["gcn"], 5, config=config, storage_dir=storage, out_path=path)
    assert sorted(json.loads(path.read_text())["models"]) == ["gcn", "lightgcn"]
    # an equal budget only: another trial count, or other settings for a stored study, fail
    with pytest.raises(ConfigError, match=r"5 trials.*6 trials"):
        tune(export_dir, ["gcn"], 6, config=config, storage_dir=storage, out_path=path)
    with pytest.raises(ConfigError, match="other settings"):
        tune(
            export_dir, ["gcn"], 5, config=config.replace({"optim.epochs": 3}), storage_dir=storage
        )
    # a study stored before a TrainConfig field existed resumes while the field is at its
    # default (the stored settings lack it)
    attrs = study.user_attrs["settings"]
    del attrs["config"]["optim"]["checkpoint_interval_s"]
    study.set_user_attr("settings", attrs)
    out = tune(export_dir, ["lightgcn"], 5, config=config, storage_dir=storage)
    assert out["models"]["lightgcn"]["trials"] == 5
    with pytest.raises(ConfigError, match="other settings"):
        changed = config.replace({"optim.checkpoint_interval_s": 1.0})
        tune(export_dir, ["lightgcn"], 5, config=changed, storage_dir=storage)
