"""Per-model settings live with the model (issue 19 item 5): DP-GCN's own settings are the
``model.dpgcn`` section, named by the ModelSpec of the three DP-GCN variants; older stored
forms (the ``model`` section, the flat names) still load, with the relation mean and side
scale the code of their time derived from the cold-start share."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import numpy as np
import optuna
import pytest
import torch

from training.checkpoint import Checkpointer, CheckpointError, LoopState, Trainer
from training.config import ModelConfig, TrainConfig
from training.config_paths import config_paths
from training.dataset import GraphData
from training.errors import ConfigError
from training.models import MODEL_SETTINGS, MODEL_SPECS, build_model, others_settings
from training.models.dpgcn import DPGCN
from training.models.dpgcn_settings import DPGCNSettings
from training.models.node_embedding import SideProjection
from training.train import load_checkpoint
from training.tuning import default_params, search_space_of, tunable

DPGCN_MODELS = ("dgcn", "dpgcn_no_ddpg", "dpgcn")
#: The cold-item setting of docs/model.md, written explicitly.
COLD_ITEM = {
    "model.dpgcn.cold_simulation": 0.5,
    "model.dpgcn.relation_mean": "node",
    "model.dpgcn.side_scale": 5.0,
}


def test_each_settings_class_is_a_section_of_the_model_settings() -> None:
    readers = {n for n, s in MODEL_SPECS.items() if s.settings is DPGCNSettings}
    assert readers == set(DPGCN_MODELS)
    assert (DPGCNSettings,) == MODEL_SETTINGS
    for settings in MODEL_SETTINGS:
        assert ModelConfig.model_fields[settings.key].annotation is settings
        assert settings.path() == f"model.{settings.key}"
    assert others_settings("lightgcn") == ("model.dpgcn.",)
    assert others_settings("dpgcn") == () and others_settings(None) == ()


def test_the_common_settings_hold_no_model_family_of_its_own() -> None:
    common = {k for k in ModelConfig.model_fields if k not in {s.key for s in MODEL_SETTINGS}}
    assert common == set(
        ["name", "dim", "num_layers", "dropout", "mlp_hidden", "history_len", "query_loss_weight"]
    )


@pytest.mark.parametrize("model", DPGCN_MODELS)
def test_the_builder_passes_dpgcns_settings(data: GraphData, model: str) -> None:
    cfg = TrainConfig().replace({"model.dim": 8, "model.num_layers": 1, **COLD_ITEM})
    built = cast(DPGCN, build_model(model, data, cfg))
    assert built.cold_simulation == 0.5 and built.gcn.relation_mean == "node"
    scales = {cast(SideProjection, p).scale for p in built.embedding.projections.values()}
    assert scales == {5.0}
    plain = cast(DPGCN, build_model(model, data, cfg.replace({"model.dpgcn": {}})))
    assert plain.cold_simulation == 0.0 and plain.gcn.relation_mean == "type"


def test_bad_values_name_the_path() -> None:
    with pytest.raises(ConfigError, match=r"TrainConfig\.model\.dpgcn\.side_scale must be >= 1"):
        TrainConfig().replace({"model.dpgcn.side_scale": 0.5})
    with pytest.raises(ConfigError, match=r"TrainConfig\.model\.dpgcn\.relation_mean"):
        TrainConfig().replace({"model.dpgcn.relation_mean": "sum"})
    with pytest.raises(ConfigError, match=r"unknown setting TrainConfig\.model\.dpgcn\.nope"):
        TrainConfig().replace({"model.dpgcn.nope": 1})


def test_sections_round_trip_and_take_a_whole_model_section() -> None:
    cfg = TrainConfig().replace(COLD_ITEM)
    assert TrainConfig.from_json(cfg.to_json()) == cfg
    assert json.loads(cfg.to_json())["model"]["dpgcn"]["relation_mean"] == "node"
    assert cfg.get("model.dpgcn.side_scale") == 5.0
    assert cfg.replace({"model.dpgcn": DPGCNSettings()}).model.dpgcn == DPGCNSettings()
    assert {k for k in cfg.to_paths() if k.startswith("model.dpgcn.")} == {
        "model.dpgcn.word2vec_terms",
        "model.dpgcn.cold_simulation",
        "model.dpgcn.relation_mean",
        "model.dpgcn.side_scale",
        "model.dpgcn.id_dropout",
    }


@pytest.mark.parametrize(
    ("stored", "want"),
    [
        # flat names (checkpoints, stored runs, tuned.json, Celery messages before the sections)
        ({"cold_simulation": 0.5}, ("node", 5.0)),
        ({"cold_simulation": 0.25}, ("node", 5.0)),
        ({"cold_simulation": 0.07}, ("type", 1.0)),  # the ML-100K tuned share
        ({"cold_simulation": 0.0}, ("type", 1.0)),
        # the model section of before model.dpgcn (sections, session 13)
        ({"model": {"cold_simulation": 0.5, "word2vec_terms": True}}, ("node", 5.0)),
        ({"model.cold_simulation": 0.16}, ("type", 1.0)),  # a tuned.json path / message
        # no share stored: the defaults
        ({"lr": 0.01}, ("type", 1.0)),
        # today's form is taken as it is
        ({"model": {"dpgcn": {"cold_simulation": 0.5}}}, ("type", 1.0)),
    ],
)
def test_older_forms_get_the_relation_mean_and_scale_of_their_time(
    stored: dict[str, object], want: tuple[str, float]
) -> None:
    cfg = TrainConfig.from_dict(stored)
    assert (cfg.model.dpgcn.relation_mean, cfg.model.dpgcn.side_scale) == want
    paths = config_paths(TrainConfig, stored)
    assert not {"cold_simulation", "model.cold_simulation", "model.word2vec_terms"} & set(paths)


def test_the_old_share_moves_and_keeps_its_value() -> None:
    cfg = TrainConfig.from_dict({"model": {"cold_simulation": 0.5, "word2vec_terms": True}})
    assert cfg.model.dpgcn == DPGCNSettings(
        word2vec_terms=True, cold_simulation=0.5, relation_mean="node", side_scale=5.0
    )
    assert TrainConfig.from_dict({"cold_simulation": 0.5}) == TrainConfig().replace(COLD_ITEM)


def test_search_spaces_set_common_paths_and_their_own_settings_only() -> None:
    own_prefixes = {s.path() + "." for s in MODEL_SETTINGS}
    for name in tunable():
        trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
        space = search_space_of(name)(trial)
        settings = MODEL_SPECS[name].settings
        own = settings.path() + "." if settings is not None else None
        for path in space:
            theirs = [p for p in own_prefixes if path.startswith(p)]
            assert not theirs or theirs == [own], (name, path)
            assert path.startswith(("model.", "optim.")), (name, path)
        TrainConfig().replace({"model.name": name, **space})
    dpgcn = search_space_of("dpgcn")(optuna.create_study().ask())
    own = {"relation_mean", "side_scale", "cold_simulation", "id_dropout"}
    assert {f"model.dpgcn.{k}" for k in own} <= set(dpgcn)


@pytest.mark.parametrize(("layers", "tuned"), [(1, False), (2, True), (3, True)])
def test_dpgcn_tunes_dropout_only_where_it_acts(layers: int, tuned: bool) -> None:
    """HeteroGCN applies dropout between layers: with one layer it does nothing, and DP-GCN's
    space leaves it out; the default trial still holds it for the default 2 layers."""
    study = optuna.create_study()
    study.enqueue_trial({"model.num_layers": layers})
    space = search_space_of("dpgcn")(study.ask())
    assert ("model.dropout" in space) is tuned
    defaults = default_params(search_space_of("dpgcn"), TrainConfig())
    assert defaults["model.num_layers"] == 2 and defaults["model.dropout"] == 0.0
    assert defaults["model.dpgcn.id_dropout"] == 0.1
    one = default_params(search_space_of("dpgcn"), TrainConfig().replace({"model.num_layers": 1}))
    assert "model.dropout" not in one


def test_id_dropout_is_a_dpgcn_setting(data: GraphData) -> None:
    assert TrainConfig().model.dpgcn.id_dropout == 0.1  # what DPGCN always used
    assert TrainConfig.from_dict({"cold_simulation": 0.5}).model.dpgcn.id_dropout == 0.1
    cfg = TrainConfig().replace({"model.dim": 8, "model.dpgcn.id_dropout": 0.3})
    model = cast(DPGCN, build_model("dpgcn", data, cfg))
    assert model.embedding.id_dropout == 0.3
    with pytest.raises(ConfigError, match=r"TrainConfig\.model\.dpgcn\.id_dropout"):
        TrainConfig().replace({"model.dpgcn.id_dropout": 1.0})


def _dpgcn_state(data: GraphData, **kwargs: object) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return DPGCN(data, dim=8, num_layers=1, **kwargs).state_dict()  # type: ignore[arg-type]


def test_the_scale_and_the_mean_leave_no_trace_in_the_weights(data: GraphData) -> None:
    """Why weights stored with the flat settings and a share above 0 are refused: a model
    built with the relation mean and scale of before ``48f604d`` and one built with those of
    after have state dicts with the same keys and shapes (the scale is a constant of
    SideProjection), so nothing tells them apart."""
    before = _dpgcn_state(data, cold_simulation=0.5)
    after = _dpgcn_state(data, cold_simulation=0.5, relation_mean="node", side_scale=5.0)
    assert before.keys() == after.keys()
    assert all(before[k].shape == after[k].shape for k in before)


def _model_pt(path: Path, config: dict[str, object], name: str) -> Path:
    torch.save({"format": 1, "model": name, "config": config, "state_dict": {}}, path)
    return path


def test_flat_dpgcn_weights_with_a_share_are_refused(tmp_path: Path) -> None:
    flat = {"model": "dpgcn", "dim": 8, "cold_simulation": 0.5}
    with pytest.raises(ConfigError, match=r"model\.pt: DP-GCN weights .* cold_simulation 0\.5"):
        load_checkpoint(_model_pt(tmp_path / "model.pt", flat, "dpgcn"))
    # loadable: a share of 0, another model, or the sections (whose rule is known)
    for config, name in (
        ({**flat, "cold_simulation": 0.0}, "dpgcn"),
        ({**flat, "model": "lightgcn"}, "lightgcn"),
        ({"model": {"name": "dpgcn", "cold_simulation": 0.5}}, "dpgcn"),
    ):
        cfg, _ = load_checkpoint(_model_pt(tmp_path / "ok.pt", config, name))
        assert cfg.model.name == name


def test_a_flat_training_checkpoint_with_a_share_is_refused(
    data: GraphData, tmp_path: Path
) -> None:
    config = TrainConfig().replace({"model.dim": 8, "model.num_layers": 1, **COLD_ITEM})
    model = build_model("dpgcn", data, config)
    optimizer = torch.optim.Adam(model.parameters())
    trainer = Trainer(model, optimizer, torch.amp.GradScaler(enabled=False), _rng())
    checkpointer = Checkpointer(tmp_path, config, {"users": 1})
    checkpointer.save(LoopState(epoch=1), trainer)
    assert checkpointer.restore(trainer, torch.device("cpu")) is not None
    payload = torch.load(checkpointer.path, weights_only=True)
    flat = {"model": "dpgcn", "dim": 8, "num_layers": 1, "cold_simulation": 0.5}
    torch.save({**payload, "config": json.dumps(flat)}, checkpointer.path)
    with pytest.raises(CheckpointError, match="retrain"):
        checkpointer.restore(trainer, torch.device("cpu"))


def test_a_checkpoint_of_before_model_dpgcn_resumes(data: GraphData, tmp_path: Path) -> None:
    """A training checkpoint written with the session-13 sections (DP-GCN's share in the model
    section, no relation mean, side scale or ID dropout) resumes under today's settings: the
    moved share by its new path, the settings added since at their defaults."""
    config = TrainConfig().replace({"model.dim": 8, "model.num_layers": 1})
    model = build_model("dpgcn", data, config)
    trainer = Trainer(
        model,
        torch.optim.Adam(model.parameters()),
        torch.amp.GradScaler(enabled=False),
        _rng(),
    )
    checkpointer = Checkpointer(tmp_path, config, {"users": 1})
    checkpointer.save(LoopState(epoch=2), trainer)
    payload = torch.load(checkpointer.path, weights_only=True)
    stored = {k: v for k, v in json.loads(payload["config"]).items() if "dpgcn" not in k}
    stored |= {"model.cold_simulation": 0.0, "model.word2vec_terms": False}
    torch.save({**payload, "config": json.dumps(stored)}, checkpointer.path)
    state = checkpointer.restore(trainer, torch.device("cpu"))
    assert state is not None and state.epoch == 2
    other = Checkpointer(tmp_path, config.replace({"model.dpgcn.id_dropout": 0.2}), {"users": 1})
    with pytest.raises(CheckpointError, match=r"model\.dpgcn\.id_dropout"):
        other.restore(trainer, torch.device("cpu"))


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)
