"""Sanity check on real data (MovieLens-100K from the shared data folder, when present):
the converted export loads, and DP-GCN beats popularity on click-prediction AUC."""

from __future__ import annotations

from pathlib import Path

import pytest
from export_factory import write_ml100k_export

from tests.paths import DATA_DIR
from training.config import TrainConfig
from training.data import load_export
from training.loop import fit
from training.splits import split_interactions
from training.train import evaluate_fit

ML100K = DATA_DIR / "ml-100k"


@pytest.mark.skipif(not (ML100K / "u.data").is_file(), reason="MovieLens-100K not available")
def test_dpgcn_beats_popularity_on_ml100k(tmp_path: Path) -> None:
    export = write_ml100k_export(ML100K, tmp_path / "ml100k")
    graph = load_export(export)
    assert graph.num_nodes("User") == 943 and graph.num_nodes("Item") == 1682
    config = TrainConfig().replace(
        {
            "model.dim": 32,
            "optim.epochs": 4,
            "optim.patience": 0,
            "eval.max_users": 300,
            "policy.steps": 10,
        }
    )
    split = split_interactions(graph, 0, config.policy.reward_of())
    assert len(split.test) == 943
    scores = {}
    for name in ("popularity", "dpgcn"):
        result = fit(split, config.replace({"model.name": name}))
        scores[name] = evaluate_fit(result, "test")["auc"]
    assert scores["dpgcn"] > scores["popularity"] + 0.01, scores
