from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.config import TrainConfig
from training.errors import ConfigError
from training.evaluate import evaluate


def test_evaluate_writes_reports(
    export_dir: Path, tmp_path: Path, tiny_config: TrainConfig
) -> None:
    events: list[dict[str, object]] = []
    summary = evaluate(
        export_dir,
        tmp_path,
        models=["popularity", "lightgcn"],
        seeds=(0, 1),
        progress=events.append,
        config=tiny_config.replace(epochs=1),
    )
    assert list(summary) == ["embedding_mlp", "popularity", "lightgcn"]  # base model added
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["embedding_mlp"]["relaimpr"]["mean"] == pytest.approx(0.0)
    for model in ("popularity", "lightgcn"):
        for metric in ("auc", "relaimpr", "ndcg@10", "precision@5", "mrr", "sampled_ndcg@10"):
            cell = data[model][metric]
            assert set(cell) == {"mean", "std", "n"} and cell["n"] == 2
    assert "query_mrr" in data["popularity"]
    # RelaImpr is computed from the same seed's AUCs
    runs = json.loads((tmp_path / "runs.json").read_text())["per_seed"]
    a, b = runs["lightgcn"][0]["auc"], runs["embedding_mlp"][0]["auc"]
    assert runs["lightgcn"][0]["relaimpr"] == pytest.approx(((a - 0.5) / (b - 0.5) - 1) * 100)
    for name in ("results.md", "auc_relaimpr.png", "training_curves.png", "table_topk.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert "Click prediction" in (tmp_path / "results.md").read_text()
    assert any(e.get("done") for e in events) and any("epoch" in e for e in events)


def test_evaluate_rejects_unknown_models(export_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        evaluate(export_dir, tmp_path, models=["nope"], seeds=(0,))
