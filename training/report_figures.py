"""The figures of an evaluation report (``auc_relaimpr.png``, ``training_curves.png``,
``table_topk.png``) and the cell format the report's tables share with them."""

from __future__ import annotations

import math
from pathlib import Path

from training.models import DISPLAY_NAMES

Summary = dict[str, dict[str, dict[str, float]]]
PAPER_COLUMNS = ("precision@5", "precision@10", "ndcg@5", "ndcg@10")


def format_cell(cell: dict[str, float] | None, percent: bool = False) -> str:
    if cell is None:
        return "–"
    if percent:
        return f"{cell['mean']:+.2f}% ± {cell['std']:.2f}"
    return f"{cell['mean']:.4f} ± {cell['std']:.4f}"


def write_figures(
    out_dir: Path,
    summary: Summary,
    models: list[str],
    curves: dict[str, list[dict[str, float]]],
    title: str,
    select_metric: str = "ndcg@10",
) -> list[Path]:
    """Bar chart of AUC (axis from 0.5) and RelaImpr, training curves (one distinguishable
    line per model: colour, line style and marker all differ), and a table image."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[Path] = []
    shown = [m for m in models if "auc" in summary.get(m, {})]
    labels = [DISPLAY_NAMES.get(m, m) for m in shown]
    if shown:
        fig, axes = plt.subplots(1, 2, figsize=(max(8.0, 0.55 * len(shown) * 2), 4.5))
        means = [summary[m]["auc"]["mean"] for m in shown]
        stds = [summary[m]["auc"].get("std", 0.0) for m in shown]
        ax = axes[0]
        ax.bar(range(len(shown)), [v - 0.5 for v in means], bottom=0.5, yerr=stds, capsize=3)
        ax.set_ylim(0.5, max(0.55, min(1.0, max(means) + 0.03)))
        ax.set_xticks(range(len(shown)), labels, rotation=45, ha="right")
        ax.set_title("AUC (click prediction), axis from 0.5")
        ax = axes[1]
        rel = [m for m in shown if "relaimpr" in summary[m]]
        if rel:
            ax.bar(
                range(len(rel)),
                [summary[m]["relaimpr"]["mean"] for m in rel],
                yerr=[summary[m]["relaimpr"].get("std", 0.0) for m in rel],
                capsize=3,
            )
            ax.set_xticks(
                range(len(rel)), [DISPLAY_NAMES.get(m, m) for m in rel], rotation=45, ha="right"
            )
            ax.axhline(0.0, color="grey", lw=0.5)
            ax.set_title("RelaImpr vs Embedding&MLP (%)")
        else:
            ax.axis("off")
            ax.text(
                0.5,
                0.5,
                "RelaImpr not reported:\nno Embedding&MLP run, or its AUC ≤ 0.5",
                ha="center",
                va="center",
                fontsize=8,
            )
        fig.suptitle(title, fontsize=9)
        fig.tight_layout()
        path = out_dir / "auc_relaimpr.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    select = f"val_{select_metric}"
    trained = {
        m: h
        for m, h in curves.items()
        if any(math.isfinite(r.get("loss", math.nan) or math.nan) for r in h)
    }
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    styles = ["-", "--", "-.", ":"]
    markers = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p"]
    cmap = plt.get_cmap("tab20")
    colors = [cmap(i) for i in range(20)]
    for n, (m, hist) in enumerate(trained.items()):
        epochs = [r["epoch"] for r in hist]
        style = {
            "color": colors[(2 * n) % len(colors)],
            "linestyle": styles[n % len(styles)],
            "marker": markers[n % len(markers)],
            "markevery": max(1, len(epochs) // 8),
            "markersize": 4,
            "lw": 1.4,
            "label": DISPLAY_NAMES.get(m, m),
        }
        axes[0].plot(epochs, [r["loss"] for r in hist], **style)
        key = select if any(select in r for r in hist) else "val_auc"
        axes[1].plot(epochs, [r.get(key, math.nan) for r in hist], **style)
    axes[0].set_title("training loss (BCE, first seed)")
    axes[1].set_title(f"{select.replace('val_', 'validation ')} (first seed)")
    for ax in axes:
        ax.set_xlabel("epoch")
    if trained:
        axes[1].legend(fontsize=7, ncol=2)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = out_dir / "training_curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    rows = [
        [DISPLAY_NAMES.get(m, m)] + [format_cell(summary[m].get(c)) for c in PAPER_COLUMNS]
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
    ax.set_title(f"{title}\nTop-K (full ranking), mean ± std over seeds", fontsize=9)
    fig.tight_layout()
    path = out_dir / "table_topk.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)
    return written
