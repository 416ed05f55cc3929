"""Under the cold-item protocol a model that cannot score a cold item is shown as n/a in every
table, with the reason, and never silently dropped or ranked at random."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.report_figures import Summary
from training.report_markdown import COLD_NA_WHY, _table, write_markdown

NA = {
    "popularity": "popularity cannot score items without interactions (inductive = False)",
    "lightgcn": "lightgcn cannot score items without interactions (inductive = False)",
}


def _cell(mean: float) -> dict[str, float]:
    return {"mean": mean, "std": 0.01, "n": 3.0, "lo": mean - 0.02, "hi": mean + 0.02}


def _report(tmp_path: Path, protocol: str, na: dict[str, str]) -> str:
    metrics = ("auc", "ndcg@10", "recall@10", "sampled_ndcg@10", "query_mrr")
    summary: Summary = {"dpgcn": {k: _cell(0.3) for k in metrics}}
    context: dict[str, Any] = {
        "dataset": "synthetic-cold",
        "protocol": protocol,
        "cold_share": 0.1,
        "seeds": [0, 1, 2],
        "na": na,
        "paired": [],
    }
    path = tmp_path / "results.md"
    write_markdown(path, summary, ["popularity", "lightgcn", "dpgcn"], context)
    return path.read_text()


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n#", start + len(heading))
    return text[start : end if end > 0 else None]


def test_every_table_shows_the_na_rows(tmp_path: Path) -> None:
    text = _report(tmp_path, "cold-item", NA)
    na_row = "| Popularity | " + " | ".join(["n/a"] * 8) + " |"
    assert na_row in _section(text, "## Top-K recommendation — full ranking")
    assert na_row in _section(text, "## Top-K recommendation — sampled ranking")
    assert "| Popularity | n/a | n/a | n/a | n/a |" in _section(text, "## Click prediction")
    assert "| LightGCN | n/a | n/a | n/a |" in _section(text, "## Query suggestion")
    assert "| LightGCN | n/a | n/a | n/a | n/a | n/a | n/a | n/a |" in _section(
        text, "### 95% bootstrap intervals"
    )
    assert "| DP-GCN | 0.3000 ± 0.0100" in _section(text, "## Click prediction")


def test_cold_item_na_is_explained_per_model(tmp_path: Path) -> None:
    text = _report(tmp_path, "cold-item", NA)
    assert "instead of ranking the held-out items at random (or all tied) in silence" in text
    assert f"* Popularity: n/a — {NA['popularity']}; {COLD_NA_WHY['popularity']}." in text
    assert f"* LightGCN: n/a — {NA['lightgcn']}; {COLD_NA_WHY['lightgcn']}." in text
    assert "every baseline here is n/a" in _section(text, "### DP-GCN: paired bootstrap tests")
    assert "— Synthetic, sparse/cold mode (planted preference model) (`synthetic-cold`)" in text


def test_other_protocols_keep_the_plain_na_list(tmp_path: Path) -> None:
    text = _report(tmp_path, "leave-last-out", {"popularity": "why"})
    assert "* Popularity: n/a — why\n" in text
    assert "in silence" not in text
    plain = _report(tmp_path, "cold-item", {})
    assert "n/a —" not in plain and "| n/a" not in plain


def test_na_rows_alone_make_no_table() -> None:
    summary: Summary = {"dpgcn": {"auc": _cell(0.7)}}
    assert _table(summary, ["popularity", "dpgcn"], ("mrr",), na=NA) == (
        "_no model reported these metrics_"
    )
    assert "| Popularity | n/a |" in _table(summary, ["popularity", "dpgcn"], ("auc",), na=NA)


def test_every_id_only_and_count_model_has_a_reason() -> None:
    from training.models import MODEL_REGISTRY

    assert set(COLD_NA_WHY) <= set(MODEL_REGISTRY)
    for name in ("popularity", "itemknn", "lightgcn", "lightgcn_pyg", "gcn"):
        assert name in COLD_NA_WHY


def test_interval_is_shown_with_its_own_centre_when_seeds_test_other_users(
    tmp_path: Path,
) -> None:
    """Seed 0 tests users 0–3 (NDCG 1), seed 1 only user 4 (NDCG 0): the mean over seeds is
    0.5, the mean over users 0.8; the interval (over users) is shown around 0.8, not 0.5."""
    import json

    from training.report import build_reports

    runs = tmp_path / "runs"
    runs.mkdir()
    for seed, users, value in ((0, [0, 1, 2, 3], 1.0), (1, [4], 0.0)):
        run = {
            "model": "dpgcn",
            "seed": seed,
            "settings": {"protocol": "cold-item"},
            "metrics": {"ndcg@10": value, "best_epoch": 1.0, "last_epoch": 1.0},
            "per_user": {"users": users, "ndcg@10": [value] * len(users)},
            "history": [],
        }
        (runs / f"dpgcn.seed{seed}.json").write_text(json.dumps(run))
    context = {"dataset": "synthetic-cold", "protocol": "cold-item"}
    summary = build_reports(tmp_path, {"protocol": "cold-item"}, context)
    cell = summary["dpgcn"]["ndcg@10"]
    assert cell["mean"] == 0.5 and cell["user_mean"] == 0.8
    assert cell["lo"] <= cell["user_mean"] <= cell["hi"]
    text = (tmp_path / "results.md").read_text()
    ci = _section(text, "### 95% bootstrap intervals over users")
    assert "| DP-GCN | 0.8000 [" in ci
    assert "| DP-GCN | 0.5000 [" not in ci
