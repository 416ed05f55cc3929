"""Stored runs are reused and reported only when made with the current settings."""

from __future__ import annotations

import json

from training.config import TrainConfig
from training.evaluate import _settings
from training.report import same_settings


def test_a_field_added_since_counts_as_its_default() -> None:
    current = _settings(TrainConfig())
    stored = json.loads(json.dumps(current))
    del stored["cold_start_k"]  # a run stored before the field existed
    assert same_settings(stored, current)
    assert not same_settings(stored, _settings(TrainConfig(cold_start_k=3)))


def test_another_value_or_no_settings_is_not_the_same() -> None:
    current = _settings(TrainConfig())
    assert not same_settings(_settings(TrainConfig(epochs=15)), current)
    assert not same_settings(None, current)
    tuned = {**current, "tuned": {"dpgcn": {"lr": 0.02}}}
    assert not same_settings(current, tuned, "dpgcn")
    assert same_settings(json.loads(json.dumps(tuned)), tuned, "dpgcn")


def test_only_the_runs_own_tuned_entry_counts() -> None:
    base = _settings(TrainConfig())
    stored = {**base, "tuned": {"dpgcn": {"lr": 0.02}, "lightgcn": {"dim": 32}}}
    retuned = {**base, "tuned": {"dpgcn": {"lr": 0.01}, "lightgcn": {"dim": 32}}}
    assert same_settings(stored, retuned, "pnn")  # untuned in both: the same run
    assert same_settings(stored, retuned, "lightgcn")
    assert not same_settings(stored, retuned, "dpgcn")
    assert not same_settings(stored, base, "dpgcn")
