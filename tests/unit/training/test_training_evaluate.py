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
        models=["embedding_mlp", "popularity", "lightgcn", "dpgcn"],
        seeds=(0, 1),
        progress=events.append,
        config=tiny_config.replace({"optim.epochs": 2}),
        dataset="movielens",
    )
    assert list(summary) == ["popularity", "embedding_mlp", "lightgcn", "dpgcn"]
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["embedding_mlp"]["relaimpr"]["mean"] == pytest.approx(0.0)
    for model in ("popularity", "lightgcn"):
        for metric in ("auc", "relaimpr", "ndcg@10", "precision@5", "mrr", "sampled_ndcg@10"):
            cell = data[model][metric]
            assert {"mean", "std", "n"} <= set(cell) and cell["n"] == 2
        lo, mean, hi = (data[model]["ndcg@10"][k] for k in ("lo", "mean", "hi"))
        assert lo <= mean <= hi
    assert "query_mrr" in data["popularity"]
    tests = data["_report"]["paired_tests"]
    assert {t["role"] for t in tests} == {"best baseline", "baseline"}
    best = {t["rival"] for t in tests if t["role"] == "best baseline"}
    others = {t["rival"]: t["metric"] for t in tests if t["role"] == "baseline"}
    assert len(best) == 1 and set(others) == {"popularity", "embedding_mlp", "lightgcn"} - best
    assert set(others.values()) == {"ndcg@10"}
    assert all(t["verdict"] in ("tie", "win", "loss") for t in tests)
    # RelaImpr is computed from the same seed's AUCs
    runs = json.loads((tmp_path / "runs.json").read_text())["per_seed"]
    a, b = runs["lightgcn"][0]["auc"], runs["embedding_mlp"][0]["auc"]
    assert runs["lightgcn"][0]["relaimpr"] == pytest.approx(((a - 0.5) / (b - 0.5) - 1) * 100)
    for name in ("results.md", "auc_relaimpr.png", "training_curves.png", "table_topk.png"):
        assert (tmp_path / name).stat().st_size > 0
    text = (tmp_path / "results.md").read_text()
    assert text.startswith("# Evaluation results — MovieLens-100K (`movielens`), leave-last-out")
    assert "best epoch (per seed)" in text and "paired bootstrap" in text
    assert "Click prediction" in text
    assert any(e.get("done") for e in events) and any("epoch" in e for e in events)
    assert [e["run"] for e in events if e.get("done")] == list(range(1, 9))

    # a second call keeps the stored runs (same settings) and only adds the new model
    events.clear()
    evaluate(
        export_dir,
        tmp_path,
        models=["lightgcn", "itemknn"],
        seeds=(0,),
        progress=events.append,
        config=tiny_config.replace({"optim.epochs": 2}),
        dataset="movielens",
    )
    kept = [e["model"] for e in events if e.get("kept")]
    assert kept == ["lightgcn"]
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["lightgcn"]["auc"]["n"] == 2 and data["itemknn"]["auc"]["n"] == 1


def test_cold_item_reports_na_for_models_that_cannot_score_cold_items(
    export_dir: Path, tmp_path: Path, tiny_config: TrainConfig
) -> None:
    evaluate(
        export_dir,
        tmp_path,
        models=["popularity"],
        seeds=(0,),
        config=tiny_config.replace(
            {"optim.epochs": 1, "eval.protocol": "cold-item", "eval.cold_share": 0.2}
        ),
    )
    text = (tmp_path / "results.md").read_text()
    assert "Popularity: n/a" in text
    data = json.loads((tmp_path / "results.json").read_text())
    assert "popularity" not in {k for k in data if not k.startswith("_")}


def test_evaluate_rejects_unknown_models(export_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="valid: popularity, itemknn"):
        evaluate(export_dir, tmp_path, models=["nope"], seeds=(0,))


def test_cli_help_lists_the_registry() -> None:
    from dpgcn.cli_evaluate import MODEL_NAMES
    from training.models import MODEL_REGISTRY

    assert MODEL_NAMES.split(", ") == list(MODEL_REGISTRY)
