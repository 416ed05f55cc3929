"""Writing evaluation results: ``results.json``, ``results.md`` and PNG figures."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from training.models import DISPLAY_NAMES

logger = logging.getLogger(__name__)

Summary = dict[str, dict[str, dict[str, float]]]

CLICK_COLUMNS = ("auc", "gauc", "relaimpr", "logloss")
TOPK_COLUMNS = (
    "precision@5",
    "precision@10",
    "recall@10",
    "ndcg@5",
    "ndcg@10",
    "hr@10",
    "map@10",
    "mrr",
)
PAPER_COLUMNS = ("precision@5", "precision@10", "ndcg@5", "ndcg@10")


def aggregate(per_seed: dict[str, list[dict[str, float]]]) -> Summary:
    """Model → metric → {"mean", "std", "n"} over seeds (sample std; 0 for one seed; NaN
    values are skipped)."""
    out: Summary = {}
    for model, runs in per_seed.items():
        names = sorted({k for r in runs for k in r})
        out[model] = {}
        for name in names:
            values = np.array([r[name] for r in runs if name in r], dtype=np.float64)
            values = values[np.isfinite(values)]
            if len(values) == 0:
                continue
            std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
            out[model][name] = {"mean": float(values.mean()), "std": std, "n": float(len(values))}
    return out


def _fmt(cell: dict[str, float] | None, percent: bool = False) -> str:
    if cell is None:
        return "–"
    if percent:
        return f"{cell['mean']:+.2f}% ± {cell['std']:.2f}"
    return f"{cell['mean']:.4f} ± {cell['std']:.4f}"


def _table(summary: Summary, models: list[str], columns: tuple[str, ...], prefix: str = "") -> str:
    head = "| model | " + " | ".join(columns) + " |"
    sep = "|---|" + "---|" * len(columns)
    rows = [head, sep]
    for m in models:
        cells = [_fmt(summary.get(m, {}).get(prefix + c), percent=c == "relaimpr") for c in columns]
        if all(c == "–" for c in cells):
            continue
        rows.append(f"| {DISPLAY_NAMES.get(m, m)} | " + " | ".join(cells) + " |")
    return "\n".join(rows) if len(rows) > 2 else "_no model reported these metrics_"


def write_markdown(
    path: Path, summary: Summary, models: list[str], context: dict[str, Any]
) -> None:
    seeds = context.get("seeds", [])
    lines = [
        f"# Evaluation results — {context.get('dataset', 'export')}",
        "",
        f"Export: `{context.get('export_dir', '')}`; counts: {context.get('counts', {})}.",
        f"Seeds: {list(seeds)} — every figure is mean ± sample std over {len(seeds)} seed(s).",
        "Split: per user, by time, last interaction → test, second last → validation "
        f"(users with ≥ {context.get('min_interactions', 3)} interactions); model selection "
        "(best epoch, DDPG α) on validation only.",
        "",
        "## Click prediction (DIN protocol)",
        f"Each test user's held-out item vs {context.get('click_negatives')} sampled items the "
        "user never interacted with. AUC pooled over users, GAUC per user; RelaImpr vs "
        "Embedding&MLP (paper eq. 8): ((AUC − 0.5)/(AUC_base − 0.5) − 1) · 100%.",
        "",
        _table(summary, models, CLICK_COLUMNS),
        "",
        "## Top-K recommendation — full ranking",
        "The held-out item ranked against every item the user has not interacted with "
        f"(training and validation items removed); at most {context.get('eval_max_users')} "
        "test users (sampled with the seed). Ties count against the held-out item.",
        "",
        _table(summary, models, TOPK_COLUMNS),
        "",
        f"## Top-K recommendation — sampled ranking ({context.get('sampled_candidates')} "
        "candidates)",
        f"The held-out item among {context.get('sampled_candidates')} candidates "
        f"(1 positive + {int(context.get('sampled_candidates', 1)) - 1} sampled negatives).",
        "",
        _table(summary, models, TOPK_COLUMNS, prefix="sampled_"),
        "",
        "## Paper-style table (Tables 4–5 layout, full ranking)",
        "",
        _table(summary, models, PAPER_COLUMNS),
        "",
        "## Query suggestion",
        "Each user's held-out (last) searched query ranked against every query they did not "
        "search in training.",
        "",
        _table(summary, models, ("query_mrr", "query_ndcg@5", "query_ndcg@10")),
        "",
        *_oracle_section(summary, models),
        *_query_task_section(summary, models, context.get("query_task") or {}),
        "## Cost",
        "",
        _table(summary, models, ("train_seconds", "best_epoch")),
        "",
        "Figures: `auc_relaimpr.png`, `training_curves.png`, `table_topk.png`.",
        "",
    ]
    path.write_text("\n".join(lines))


ORACLE_COLUMNS = (
    "ndcg@10",
    "ndcg@10_vs_oracle",
    "hr@10_vs_oracle",
    "sampled_ndcg@10_vs_oracle",
    "auc_vs_oracle",
)
QUERY_TASK_COLUMNS = tuple(
    f"competition_{c}"
    for c in ("map@5", "val_map@5", "blend_map@5", "blend_val_map@5", "blend_lambda")
)


def _has(summary: Summary, key: str) -> bool:
    return any(key in d for d in summary.values())


def _oracle_section(summary: Summary, models: list[str]) -> list[str]:
    if not _has(summary, "ndcg@10_vs_oracle"):
        return []
    return [
        "## Against the planted oracle (synthetic data)",
        "The generator's own preference scores (`oracle.npz`, the best ranking any model can "
        "make in expectation) evaluated by the same protocols on the same splits; "
        "`<metric>_vs_oracle` = model / oracle, per seed, then mean ± std.",
        "",
        _table(summary, models, ORACLE_COLUMNS),
        "",
    ]


def _query_task_section(summary: Summary, models: list[str], coverage: dict[str, Any]) -> list[str]:
    if not _has(summary, "competition_map@5"):
        return []
    return [
        "## Query-conditioned ranking (competition task, MAP@5)",
        "Each row of the labelled test file (kept out of the graph): rank every item for "
        "(user, query text); AP@5 = 1/rank of the clicked item if it is in the top 5 (ties "
        "against it, unknown items score 0), averaged. Graph models score "
        "<u + v_q, i> with v_q the mean vector of the query's training searchers; the blend is "
        "log(query frequency) + λ·z(model score), λ chosen on the validation rows (each "
        "user's held-out validation search and click). See `training/query_task.py`. "
        f"Coverage: {coverage}.",
        "",
        _table(summary, models, QUERY_TASK_COLUMNS),
        "",
    ]


def write_figures(
    out_dir: Path,
    summary: Summary,
    models: list[str],
    curves: dict[str, list[dict[str, float]]],
) -> list[Path]:
    """Bar chart of AUC and RelaImpr, training curves, and a paper-style table image."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[Path] = []
    shown = [m for m in models if "auc" in summary.get(m, {})]
    labels = [DISPLAY_NAMES.get(m, m) for m in shown]
    if shown:
        fig, axes = plt.subplots(1, 2, figsize=(max(8.0, 0.55 * len(shown) * 2), 4.5))
        for ax, key, title in (
            (axes[0], "auc", "AUC (click prediction)"),
            (axes[1], "relaimpr", "RelaImpr vs Embedding&MLP (%)"),
        ):
            means = [summary[m].get(key, {}).get("mean", math.nan) for m in shown]
            stds = [summary[m].get(key, {}).get("std", 0.0) for m in shown]
            ax.bar(range(len(shown)), means, yerr=stds, capsize=3, color="tab:blue")
            ax.set_xticks(range(len(shown)), labels, rotation=45, ha="right")
            ax.set_title(title)
            if key == "auc":
                finite = [v for v in means if math.isfinite(v)]
                if finite:
                    ax.set_ylim(max(0.0, min(finite) - 0.05), min(1.0, max(finite) + 0.05))
            ax.axhline(0.0 if key == "relaimpr" else 0.5, color="grey", lw=0.5)
        fig.tight_layout()
        path = out_dir / "auc_relaimpr.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    trained = {m: h for m, h in curves.items() if any(math.isfinite(r["loss"]) for r in h)}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for m, hist in trained.items():
        epochs = [r["epoch"] for r in hist]
        axes[0].plot(epochs, [r["loss"] for r in hist], label=DISPLAY_NAMES.get(m, m))
        axes[1].plot(epochs, [r["val_auc"] for r in hist], label=DISPLAY_NAMES.get(m, m))
    axes[0].set_title("training loss (BCE, first seed)")
    axes[1].set_title("validation AUC (first seed)")
    for ax in axes:
        ax.set_xlabel("epoch")
    if trained:
        axes[1].legend(fontsize=7)
    fig.tight_layout()
    path = out_dir / "training_curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    rows = [
        [DISPLAY_NAMES.get(m, m)] + [_fmt(summary[m].get(c)) for c in PAPER_COLUMNS]
        for m in models
        if any(c in summary.get(m, {}) for c in PAPER_COLUMNS)
    ]
    fig, ax = plt.subplots(figsize=(10, 0.45 * (len(rows) + 2)))
    ax.axis("off")
    if rows:
        table = ax.table(
            cellText=rows, colLabels=["model", *PAPER_COLUMNS], loc="center", cellLoc="center"
        )
        table.auto_set_font_size(False)
        table.set_fontsize(8)
    ax.set_title("Top-K recommendation (full ranking), mean ± std over seeds")
    fig.tight_layout()
    path = out_dir / "table_topk.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)
    return written


def write_json(path: Path, summary: Summary) -> None:
    clean = {
        m: {
            k: {s: (v if math.isfinite(v) else None) for s, v in cell.items()}
            for k, cell in d.items()
        }
        for m, d in summary.items()
    }
    path.write_text(json.dumps(clean, indent=2, sort_keys=True))
