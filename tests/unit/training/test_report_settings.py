"""Stored runs are reused and reported only when made with the current settings."""

from __future__ import annotations

import json
from typing import Any

from training.config import TrainConfig
from training.evaluate import _settings
from training.report import same_settings

#: A run's settings as ``dpgcn evaluate`` stored them before TrainConfig had sections (the
#: flat names, the DDPG settings nested under "ddpg"), with every value at its default then.
FLAT_SETTINGS: dict[str, Any] = {
    "batch_size": 2048,
    "batching": "auto",
    "checkpoint_interval_s": 60.0,
    "click_negatives": 4,
    "cold_share": 0.1,
    "cold_simulation": 0.0,
    "cold_start_k": 10,
    "ddpg": {
        "actor_hidden": [128, 64],
        "actor_lr": 0.0001,
        "alpha_grid": [0.0, 0.1, 0.25, 0.5, 1.0],
        "batch_size": 256,
        "buffer_size": 50000,
        "critic_hidden": [128, 64],
        "critic_lr": 0.001,
        "env_batch": 256,
        "env_candidates": 50,
        "env_window": 5,
        "gamma": 0.9,
        "noise": "gaussian",
        "noise_sigma": 0.2,
        "slate_size": 5,
        "state_history": 5,
        "steps": 150,
        "tau": 0.01,
        "updates_per_step": 1,
    },
    "deterministic": True,
    "dim": 64,
    "dropout": 0.0,
    "epochs": 200,
    "eval_max_users": 5000,
    "fanout": [10, 5],
    "fanout_per": "type",
    "history_len": 20,
    "lr": 0.005,
    "min_interactions": 3,
    "minibatch_min_edges": 1000000,
    "mixed_precision": True,
    "mlp_hidden": [64],
    "num_layers": 2,
    "num_negatives": 2,
    "patience": 10,
    "processes": 1,
    "protocol": "leave-last-out",
    "query_loss_weight": 0.5,
    "ratios": [0.8, 0.1, 0.1],
    "rewards": [["VIEWED", 0.5], ["CLICKED", 1.0], ["RATED", 1.0], ["PURCHASED", 5.0]],
    "sampled_candidates": 100,
    "select_metric": "ndcg@10",
    "top_k": [5, 10, 20],
    "weight_decay": 0.0,
    "word2vec_terms": False,
}


def test_a_field_added_since_counts_as_its_default() -> None:
    current = _settings(TrainConfig())
    stored = json.loads(json.dumps(current))
    del stored["serving.cold_start_k"]  # a run stored before the setting existed
    assert same_settings(stored, current)
    assert not same_settings(stored, _settings(TrainConfig().replace({"serving.cold_start_k": 3})))


def test_another_value_or_no_settings_is_not_the_same() -> None:
    current = _settings(TrainConfig())
    assert not same_settings(_settings(TrainConfig().replace({"optim.epochs": 15})), current)
    assert not same_settings(None, current)
    tuned = {**current, "tuned": {"dpgcn": {"optim.lr": 0.02}}}
    assert not same_settings(current, tuned, "dpgcn")
    assert same_settings(json.loads(json.dumps(tuned)), tuned, "dpgcn")


def test_only_the_runs_own_tuned_entry_counts() -> None:
    base = _settings(TrainConfig())
    stored = {**base, "tuned": {"dpgcn": {"optim.lr": 0.02}, "lightgcn": {"model.dim": 32}}}
    retuned = {**base, "tuned": {"dpgcn": {"optim.lr": 0.01}, "lightgcn": {"model.dim": 32}}}
    assert same_settings(stored, retuned, "pnn")  # untuned in both: the same run
    assert same_settings(stored, retuned, "lightgcn")
    assert not same_settings(stored, retuned, "dpgcn")
    assert not same_settings(stored, base, "dpgcn")


def test_a_run_stored_with_flat_names_still_matches_the_same_settings() -> None:
    current = _settings(TrainConfig())
    assert same_settings(FLAT_SETTINGS, current)
    # a field at its default that the flat run lacks still matches
    lacking = {k: v for k, v in FLAT_SETTINGS.items() if k != "cold_simulation"}
    assert same_settings(lacking, current)
    # other values do not, in a section or in the old "ddpg" object
    assert not same_settings({**FLAT_SETTINGS, "lr": 0.02}, current)
    assert not same_settings(FLAT_SETTINGS, _settings(TrainConfig().replace({"optim.lr": 0.02})))
    ddpg = {**FLAT_SETTINGS["ddpg"], "steps": 3}
    assert not same_settings({**FLAT_SETTINGS, "ddpg": ddpg}, current)
    assert same_settings(
        {**FLAT_SETTINGS, "ddpg": ddpg}, _settings(TrainConfig().replace({"policy.steps": 3}))
    )


def test_a_flat_tuned_entry_matches_the_same_changes_by_path() -> None:
    base = _settings(TrainConfig())
    stored = {**FLAT_SETTINGS, "tuned": {"dpgcn": {"lr": 0.02, "dim": 32}}}
    current = {**base, "tuned": {"dpgcn": {"optim.lr": 0.02, "model.dim": 32}}}
    assert same_settings(stored, current, "dpgcn")
    assert not same_settings(stored, {**base, "tuned": {"dpgcn": {"optim.lr": 0.01}}}, "dpgcn")


def test_the_published_cold_item_runs_match_the_cold_item_settings() -> None:
    """The runs of docs/results/synthetic-cold/cold-item were stored with the flat names and
    the share 0.5, when the code derived the relation mean ("node") and the side scale (5)
    from it: they match the cold-item settings written explicitly, and not the share alone."""
    stored = {**FLAT_SETTINGS, "protocol": "cold-item", "cold_simulation": 0.5}
    cold = TrainConfig().replace({"eval.protocol": "cold-item", "model.dpgcn.cold_simulation": 0.5})
    explicit = cold.replace({"model.dpgcn.relation_mean": "node", "model.dpgcn.side_scale": 5.0})
    for model in ("dpgcn", "dgcn", "dpgcn_no_ddpg"):
        assert same_settings(stored, _settings(explicit), model)
        assert not same_settings(stored, _settings(cold), model)
    # the ML-100K tuned share (0.07) was below the old threshold: plain, as stored
    tuned = {**FLAT_SETTINGS, "tuned": {"dpgcn": {"cold_simulation": 0.07, "lr": 0.0046}}}
    now = {
        **_settings(TrainConfig()),
        "tuned": {"dpgcn": {"model.dpgcn.cold_simulation": 0.07, "optim.lr": 0.0046}},
    }
    assert same_settings(tuned, now, "dpgcn")
    scaled = {"model.dpgcn.side_scale": 5.0, "model.dpgcn.relation_mean": "node"}
    assert not same_settings(
        tuned, {**now, "tuned": {"dpgcn": {**now["tuned"]["dpgcn"], **scaled}}}, "dpgcn"
    )


def test_a_model_is_matched_on_the_settings_it_reads() -> None:
    """LightGCN reads no DP-GCN setting: its stored run still matches when only those differ."""
    stored = _settings(TrainConfig())
    current = _settings(TrainConfig().replace({"model.dpgcn.cold_simulation": 0.5}))
    assert same_settings(stored, current, "lightgcn")
    assert not same_settings(stored, current, "dpgcn")
    assert not same_settings(stored, current)
