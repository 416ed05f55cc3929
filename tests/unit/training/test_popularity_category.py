"""The category back-off of Popularity: hand-computed scores, and a cold-item run that ranks
the held-out items instead of reporting n/a."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from training.config import TrainConfig
from training.evaluate import evaluate
from training.models.popularity import CategoryPopularity, Popularity


def _data() -> SimpleNamespace:
    """5 items: item 0 has 3 training users, items 1 and 4 one each, items 2 and 3 none.
    Categories: 0 -> c0, 1 -> c0, 2 -> c0 and c1, 3 -> c2 (no trained item), 4 -> c1."""
    train = SimpleNamespace(col=np.array([0, 0, 0, 1, 4], dtype=np.int64))
    return SimpleNamespace(
        n_users=3,
        n_items=5,
        n_queries=0,
        split=SimpleNamespace(train=train),
        item_categories=torch.tensor([[0, 1, 2, 2, 3, 4], [0, 0, 0, 1, 2, 1]]),
    )


def test_untrained_items_get_their_categories_mean_popularity() -> None:
    data = _data()
    model = CategoryPopularity(data)  # type: ignore[arg-type]
    model.fit_statistics(data)  # type: ignore[arg-type]
    log4, log2 = math.log(4), math.log(2)
    c0, c1 = (log4 + log2) / 2, log2
    expected = [log4, log2, (c0 + c1) / 2, (log4 + log2 + log2) / 3, log2]
    assert model.item_score.tolist() == pytest.approx(expected)
    assert model.inductive and not Popularity.inductive

    plain = Popularity(data)  # type: ignore[arg-type]
    plain.fit_statistics(data)  # type: ignore[arg-type]
    assert plain.item_score[[2, 3]].tolist() == [0.0, 0.0]


def test_without_training_interactions_every_item_scores_zero() -> None:
    data = _data()
    data.split.train.col = np.zeros(0, dtype=np.int64)
    model = CategoryPopularity(data)  # type: ignore[arg-type]
    model.fit_statistics(data)  # type: ignore[arg-type]
    assert model.item_score.tolist() == [0.0] * 5


def test_cold_item_protocol_ranks_held_out_items(
    export_dir: Path, tmp_path: Path, tiny_config: TrainConfig
) -> None:
    evaluate(
        export_dir,
        tmp_path,
        models=["popularity", "popularity_category"],
        seeds=(0,),
        config=tiny_config.replace(
            {"optim.epochs": 1, "eval.protocol": "cold-item", "eval.cold_share": 0.2}
        ),
    )
    data = json.loads((tmp_path / "results.json").read_text())
    assert "popularity" not in data and "popularity_category" in data
    assert data["popularity_category"]["ndcg@10"]["n"] == 1
    assert "Popularity: n/a" in (tmp_path / "results.md").read_text()
