"""The planted-model oracle: loading, alignment and evaluation under the harness's protocol."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from export_factory import write_random_export

from training.config import TrainConfig
from training.data import load_export
from training.errors import ExportFormatError
from training.evaluate import evaluate
from training.oracle import load_oracle
from training.splits import split_interactions


def _write_oracle(
    path: Path, user_ids: np.ndarray, user: np.ndarray, item_ids: np.ndarray, item: np.ndarray
) -> None:
    np.savez(
        path / "oracle.npz",
        **{"User.ids": user_ids, "User.vector": user, "Item.ids": item_ids, "Item.vector": item},
    )


def test_oracle_rows_follow_the_export_ids(tmp_path: Path) -> None:
    export = write_random_export(tmp_path / "e", n_users=12, n_items=9, seed=3)
    graph = load_export(export)
    rng = np.random.default_rng(0)
    user, item = rng.normal(size=(12, 4)), rng.normal(size=(9, 4))
    pu, pi = rng.permutation(12), rng.permutation(9)  # stored in another order
    _write_oracle(export, graph.ids["User"][pu], user[pu], graph.ids["Item"][pi], item[pi])
    scorer = load_oracle(export, graph)
    assert scorer is not None
    np.testing.assert_allclose(scorer.all_items(np.arange(12)), user @ item.T, atol=1e-5)


def test_oracle_missing_ids_is_an_error(tmp_path: Path) -> None:
    export = write_random_export(tmp_path / "e", n_users=12, n_items=9, seed=3)
    graph = load_export(export)
    ids = graph.ids["User"][:-1]
    _write_oracle(export, ids, np.ones((11, 2)), graph.ids["Item"], np.ones((9, 2)))
    with pytest.raises(ExportFormatError, match="no User vector"):
        load_oracle(export, graph)
    assert load_oracle(tmp_path, graph) is None  # no oracle.npz: None


def test_oracle_is_evaluated_on_the_models_split(tmp_path: Path, tiny_config: TrainConfig) -> None:
    """An 'oracle' that knows each user's held-out test item of seed 0 must get HR@10 = 1 and
    NDCG@10 = 1: it is only possible if it is scored on exactly the harness's split."""
    export = write_random_export(tmp_path / "e", seed=5)
    graph = load_export(export)
    split = split_interactions(
        graph, 0, tiny_config.policy.reward_of(), tiny_config.eval.min_interactions
    )
    n_u, n_i = split.n_users, split.n_items
    user = np.zeros((n_u, n_i), np.float32)
    user[split.test.row, split.test.col] = 1.0  # one-hot "preference" for the test item
    _write_oracle(export, graph.ids["User"], user, graph.ids["Item"], np.eye(n_i, dtype=np.float32))
    evaluate(
        export,
        tmp_path / "out",
        ["popularity"],
        (0,),
        config=tiny_config.replace({"optim.epochs": 1}),
    )
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["oracle"]["hr@10"]["mean"] == pytest.approx(1.0)
    assert results["oracle"]["ndcg@10"]["mean"] == pytest.approx(1.0)
    assert results["oracle"]["ndcg@10_vs_oracle"]["mean"] == pytest.approx(1.0)
    ratio = results["popularity"]["ndcg@10_vs_oracle"]["mean"]
    assert ratio == pytest.approx(results["popularity"]["ndcg@10"]["mean"])  # oracle = 1
    assert "logloss" not in results["oracle"]
    text = (tmp_path / "out" / "results.md").read_text()
    assert "Against the planted oracle" in text and "Oracle (planted model)" in text
