"""train_from_export end to end on a tiny export, and the model directory it writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from training.config import TrainConfig
from training.errors import TrainingError
from training.inference import Recommender
from training.train import load_checkpoint, train_from_export

REQUIRED = {
    "embeddings.npz",
    "train_config.json",
    "metrics.json",
    "model.pt",
    "policy.pt",
    "node_keys.npz",
}


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory, export_dir: Path, tiny_config: TrainConfig
) -> tuple[Path, dict[str, Any], list[dict[str, Any]]]:
    out = tmp_path_factory.mktemp("model") / "m"
    events: list[dict[str, Any]] = []
    cfg = tiny_config.replace(
        {
            "optim.epochs": 3,
            "optim.patience": 0,
            "policy.steps": 5,
            "policy.env_batch": 32,
            "policy.batch_size": 32,
        }
    )
    metrics = train_from_export(export_dir, out, cfg, progress=events.append)
    return out, metrics, events


def test_progress_and_metrics(trained: tuple[Path, dict[str, Any], list[dict[str, Any]]]) -> None:
    out, metrics, events = trained
    assert [e["epoch"] for e in events] == [1, 2, 3]
    assert all(set(e) == {"epoch", "epochs", "loss", "val_auc", "val_ndcg@10"} for e in events)
    # patience 0 and a cap of 3: the report must be able to say "stopped at cap"
    assert metrics["last_epoch"] == 3 and metrics["select_metric"] == "ndcg@10"
    assert metrics["stopped_at_cap"] == (metrics["best_epoch"] == 3)
    assert all(e["epochs"] == 3 and np.isfinite(e["loss"]) for e in events)
    assert 0.0 <= metrics["val"]["auc"] <= 1.0 and "ndcg@10" in metrics["test"]
    assert len(metrics["history"]) == 3 and "policy" in metrics
    assert json.loads((out / "metrics.json").read_text())["best_epoch"] == metrics["best_epoch"]


def test_model_dir_contents(
    trained: tuple[Path, dict[str, Any], list[dict[str, Any]]], export_dir: Path
) -> None:
    out, _, _ = trained
    assert {p.name for p in out.iterdir()} >= REQUIRED
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp dirs left
    with np.load(out / "embeddings.npz", allow_pickle=False) as z:
        arrays = dict(z)
    with np.load(export_dir / "graph.npz", allow_pickle=False) as g:
        assert np.array_equal(arrays["User.ids"], g["User.ids"])
        assert np.array_equal(arrays["Query.ids"], g["Query.ids"])
    for label in ("User", "Item", "Query"):
        emb = arrays[f"{label}.embedding"]
        assert emb.dtype == np.float32 and emb.shape == (len(arrays[f"{label}.ids"]), 8)
        assert np.isfinite(emb).all()
    cfg, state = load_checkpoint(out / "model.pt")
    assert cfg == TrainConfig.from_json((out / "train_config.json").read_text())
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    with np.load(out / "node_keys.npz", allow_pickle=False) as z:  # rows of the ID tables
        assert np.array_equal(z["Item"], arrays["Item.ids"])
        assert np.array_equal(z["User"], arrays["User.ids"])


def test_recommender_from_model_dir(
    trained: tuple[Path, dict[str, Any], list[dict[str, Any]]],
) -> None:
    out, _, _ = trained
    rec = Recommender.load(out)
    assert rec.policy is not None
    user = str(rec.user_ids[0])
    top = rec.recommend(user, 5)
    assert len(top) == 5 and [s for _, s in top] == sorted((s for _, s in top), reverse=True)
    excluded = rec.recommend(user, 5, exclude={top[0][0]})
    assert top[0][0] not in [i for i, _ in excluded]
    cands = [str(i) for i in rec.item_ids[:4]]
    assert {i for i, _ in rec.recommend(user, 10, candidates=cands)} == set(cands)
    assert rec.has_user(user) and not rec.has_user("nobody")
    with pytest.raises(KeyError):
        rec.recommend("nobody", 3)
    sims = rec.similar_items(str(rec.item_ids[0]), 3)
    assert len(sims) == 3 and str(rec.item_ids[0]) not in [i for i, _ in sims]
    assert rec.query_ids is not None
    prefix = str(rec.query_ids[0])[:7]
    sugg = rec.suggest_queries(user, 50, prefix=prefix.upper())
    assert sugg and all(q.lower().startswith(prefix.lower()) for q, _ in sugg)
    assert len(rec.suggest_queries(user, 3)) == 3
    assert rec.user_features is not None
    vec = rec.cold_start_vector(rec.user_features[0])
    assert vec.shape == (8,) and np.isfinite(vec).all()


def test_output_is_replaced_atomically(
    export_dir: Path, tmp_path: Path, tiny_config: TrainConfig
) -> None:
    out = tmp_path / "model"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    cfg = tiny_config.replace({"model.name": "lightgcn", "optim.epochs": 1})
    train_from_export(export_dir, out, cfg)
    assert not (out / "stale.txt").exists() and (out / "embeddings.npz").exists()
    assert not (out / "policy.pt").exists()
    with pytest.raises(TrainingError, match="dot-product"):
        train_from_export(
            export_dir,
            tmp_path / "din",
            tiny_config.replace({"model.name": "din", "optim.epochs": 1}),
        )
    assert not (tmp_path / "din").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
