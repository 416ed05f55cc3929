"""Writing evaluation results: ``results.json``, ``results.md``, ``runs.json`` and PNG figures,
rebuilt from the run files of :mod:`training.evaluate` (one per model and seed).

Every full-ranking metric gets, next to its mean ± sample std over seeds, a 95% percentile
bootstrap interval over users (each user's metric averaged over the seeds, users resampled);
DP-GCN gets a paired bootstrap test against the best baseline (and against its ablation
without DDPG): "tie" where the paired interval of the difference covers 0."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from training.metrics import bootstrap_ci, paired_bootstrap, relaimpr
from training.models import DISPLAY_NAMES, MODEL_REGISTRY

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
#: Full-ranking metrics that get bootstrap intervals and paired tests in ``results.md``.
CI_COLUMNS = ("ndcg@10", "recall@10", "hr@10", "precision@10", "map@10", "ndcg@5", "mrr")
#: The proposed model and its variants (everything else is a baseline).
OURS = ("dpgcn", "dpgcn_no_ddpg", "dgcn")
TARGET = "dpgcn"
BASE_MODEL = "embedding_mlp"
ORACLE = "oracle"
ORACLE_RATIOS = ("ndcg@10", "hr@10", "auc", "sampled_ndcg@10")
#: Report titles of the datasets `dpgcn evaluate` knows.
DATASET_TITLES = {
    "movielens": "MovieLens-100K",
    "bestbuy": "Best Buy search → click (small)",
    "synthetic": "Synthetic (planted preference model)",
    "jdsearch": "JD search (sample)",
    "amazon": "Amazon Electronics (DIN sample)",
}
PROTOCOL_TEXT = {
    "leave-last-out": "leave-last-out: per user, by time, last interaction → test, second last "
    "→ validation, the rest → training (users with ≥ {min_interactions} interactions)",
    "ratio-random": "ratio split, random order (RecBole `RS` with random ordering): per user "
    "{ratios} of the interactions → train / validation / test (users with ≥ "
    "{min_interactions} interactions)",
    "ratio-temporal": "ratio split, temporal order (RecBole `RS` with `TO`): per user, by time, "
    "{ratios} of the interactions → train / validation / test (users with ≥ "
    "{min_interactions} interactions)",
    "cold-item": "cold items: {cold_share} of the items, with every interaction they have, → "
    "test, as many → validation; they are ranked against the whole catalogue; models that "
    "cannot score an item without interactions show n/a",
}


def aggregate(per_seed: dict[str, list[dict[str, float]]]) -> Summary:
    """Model → metric → {"mean", "std", "n"} over seeds (sample std; 0 for one seed; NaN
    values are skipped). :func:`build_reports` adds "lo" / "hi" (bootstrap interval) to the
    full-ranking metrics."""
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


def _fmt_ci(cell: dict[str, float] | None) -> str:
    if cell is None or "lo" not in cell:
        return "–"
    return f"{cell['mean']:.4f} [{cell['lo']:.4f}, {cell['hi']:.4f}]"


# ------------------------------------------------------------------------- run files -> report
def load_runs(out_dir: Path, settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Every run file under ``out_dir/runs`` made with ``settings``, in registry order."""
    runs = []
    for path in sorted((Path(out_dir) / "runs").glob("*.json")):
        try:
            run = json.loads(path.read_text())
        except json.JSONDecodeError:
            logger.warning("skipping unreadable run file %s", path)
            continue
        if run.get("settings") == settings:
            runs.append(run)
        else:
            logger.info("skipping %s: made with other settings", path)
    order = {m: i for i, m in enumerate([*MODEL_REGISTRY, ORACLE])}
    runs.sort(key=lambda r: (order.get(r["model"], len(order)), r["seed"]))
    return runs


def user_vectors(runs: list[dict[str, Any]], metric: str) -> dict[int, float]:
    """One model's per-user ``metric``, averaged over its seeds (users of any seed)."""
    total: dict[int, float] = {}
    count: dict[int, int] = {}
    for run in runs:
        pu = run.get("per_user") or {}
        if metric not in pu:
            continue
        for u, v in zip(pu["users"], pu[metric], strict=True):
            total[int(u)] = total.get(int(u), 0.0) + float(v)
            count[int(u)] = count.get(int(u), 0) + 1
    return {u: total[u] / count[u] for u in total}


def build_reports(out_dir: Path, settings: dict[str, Any], context: dict[str, Any]) -> Summary:
    """Rebuild ``results.json``, ``runs.json``, ``results.md`` and the figures of ``out_dir``
    from its run files; returns the summary."""
    out_dir = Path(out_dir)
    runs = load_runs(out_dir, settings)
    by_model: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        by_model.setdefault(run["model"], []).append(run)
    na = {m: rs[0]["na"] for m, rs in by_model.items() if rs and rs[0].get("na")}
    per_seed: dict[str, list[dict[str, float]]] = {
        m: [dict(r["metrics"]) for r in rs if r.get("metrics")] for m, rs in by_model.items()
    }
    per_seed = {
        m: [{k: _num(v) for k, v in r.items()} for r in rs] for m, rs in per_seed.items() if rs
    }
    seeds = sorted({r["seed"] for r in runs})
    _add_relative(by_model, per_seed)
    summary = aggregate(per_seed)
    for m, rs in by_model.items():
        if m not in summary:
            continue
        for metric in CI_COLUMNS:
            vec = user_vectors(rs, metric)
            if vec and metric in summary[m]:
                lo, hi = bootstrap_ci(list(vec.values()))
                summary[m][metric]["lo"], summary[m][metric]["hi"] = lo, hi
                summary[m][metric]["users"] = float(len(vec))
    tests = paired_tests(by_model, summary)
    models = [m for m in [*MODEL_REGISTRY, ORACLE] if m in by_model]
    curves = {m: rs[0].get("history", []) for m, rs in by_model.items() if rs}
    epochs_by_model = {
        m: {
            "best": [int(_num(r["metrics"].get("best_epoch"))) for r in rs if r.get("metrics")],
            "last": [int(_num(r["metrics"].get("last_epoch"))) for r in rs if r.get("metrics")],
            "cap": [bool(r["metrics"].get("stopped_at_cap")) for r in rs if r.get("metrics")],
        }
        for m, rs in by_model.items()
        if m != ORACLE and any(r.get("metrics") for r in rs)
    }
    ctx = {
        **context,
        "seeds": seeds,
        "na": na,
        "paired": tests,
        "epochs_by_model": epochs_by_model,
    }
    write_json(out_dir / "results.json", summary, {"paired_tests": tests, "n/a": na})
    (out_dir / "runs.json").write_text(
        json.dumps({"per_seed": per_seed, "curves": curves}, default=float, indent=1)
    )
    write_markdown(out_dir / "results.md", summary, models, ctx)
    write_figures(out_dir, summary, models, curves, ctx)
    return summary


def _num(v: Any) -> float:
    return float("nan") if v is None else float(v)


def _add_relative(
    by_model: dict[str, list[dict[str, Any]]], per_seed: dict[str, list[dict[str, float]]]
) -> None:
    """RelaImpr against Embedding&MLP and ratios to the oracle, seed by seed."""
    base = {r["seed"]: r["metrics"] for r in by_model.get(BASE_MODEL, []) if r.get("metrics")}
    oracle = {r["seed"]: r["metrics"] for r in by_model.get(ORACLE, []) if r.get("metrics")}
    for m, rs in by_model.items():
        kept = [r for r in rs if r.get("metrics")]
        for run, row in zip(kept, per_seed.get(m, []), strict=True):
            b = base.get(run["seed"])
            if b is not None and m != ORACLE and "auc" in row:
                row["relaimpr"] = relaimpr(row["auc"], _num(b.get("auc")))
            o = oracle.get(run["seed"])
            if o is not None:
                for key in ORACLE_RATIOS:
                    ref = _num(o.get(key))
                    if key in row and ref:
                        row[f"{key}_vs_oracle"] = row[key] / ref


def paired_tests(
    by_model: dict[str, list[dict[str, Any]]], summary: Summary
) -> list[dict[str, Any]]:
    """DP-GCN against the best baseline by NDCG@10 (and against DP-GCN w/o DDPG): paired
    bootstrap over the users both ranked, per metric of :data:`CI_COLUMNS`."""
    if TARGET not in by_model or TARGET not in summary:
        return []
    baselines = [
        m for m in by_model if m not in (*OURS, ORACLE) and "ndcg@10" in summary.get(m, {})
    ]
    rivals = []
    if baselines:
        rivals.append(
            (max(baselines, key=lambda m: summary[m]["ndcg@10"]["mean"]), "best baseline")
        )
    if "dpgcn_no_ddpg" in summary:
        rivals.append(("dpgcn_no_ddpg", "ablation"))
    out = []
    for rival, role in rivals:
        for metric in CI_COLUMNS:
            a = user_vectors(by_model[TARGET], metric)
            b = user_vectors(by_model[rival], metric)
            common = sorted(set(a) & set(b))
            if not common:
                continue
            t = paired_bootstrap([a[u] for u in common], [b[u] for u in common])
            verdict = "tie" if t["lo"] <= 0.0 <= t["hi"] else ("win" if t["diff"] > 0 else "loss")
            out.append(
                {
                    "model": TARGET,
                    "rival": rival,
                    "role": role,
                    "metric": metric,
                    "users": len(common),
                    **t,
                    "verdict": verdict,
                }
            )
    return out


def _table(
    summary: Summary,
    models: list[str],
    columns: tuple[str, ...],
    prefix: str = "",
    na: dict[str, str] | None = None,
) -> str:
    head = "| model | " + " | ".join(columns) + " |"
    sep = "|---|" + "---|" * len(columns)
    rows = [head, sep]
    for m in models:
        if na and m in na:
            rows.append(
                f"| {DISPLAY_NAMES.get(m, m)} | " + " | ".join("n/a" for _ in columns) + " |"
            )
            continue
        cells = [_fmt(summary.get(m, {}).get(prefix + c), percent=c == "relaimpr") for c in columns]
        if all(c == "–" for c in cells):
            continue
        rows.append(f"| {DISPLAY_NAMES.get(m, m)} | " + " | ".join(cells) + " |")
    return "\n".join(rows) if len(rows) > 2 else "_no model reported these metrics_"


def _title(context: dict[str, Any]) -> str:
    name = str(context.get("dataset", "export"))
    title = DATASET_TITLES.get(name, name)
    label = f"{title} (`{name}`)" if title != name else f"`{name}`"
    return f"# Evaluation results — {label}, {context.get('protocol', 'leave-last-out')}"


def _protocol_text(context: dict[str, Any]) -> str:
    text = PROTOCOL_TEXT.get(str(context.get("protocol")), str(context.get("protocol")))
    ratios = "/".join(f"{r:g}" for r in context.get("ratios", (0.8, 0.1, 0.1)))
    return text.format(
        min_interactions=context.get("min_interactions", 3),
        ratios=ratios,
        cold_share=f"{float(context.get('cold_share', 0.1)):.0%}",
    )


def _relaimpr_note(summary: Summary, context: dict[str, Any]) -> str:
    base = summary.get(BASE_MODEL, {}).get("auc")
    if base is None:
        return "RelaImpr: not computed (no Embedding&MLP run to measure against)."
    if base["mean"] <= 0.5:
        return (
            f"RelaImpr: not reported — the base model's AUC ({base['mean']:.4f}) is not above "
            "0.5, so (AUC − 0.5)/(AUC_base − 0.5) divides by zero or flips sign."
        )
    return (
        "RelaImpr vs Embedding&MLP (paper eq. 8): ((AUC − 0.5)/(AUC_base − 0.5) − 1) · 100%, "
        "seed by seed (not reported for a seed whose base AUC is ≤ 0.5)."
    )


def _na_rows(models: list[str], na: dict[str, str]) -> str:
    if not na:
        return ""
    return "\n".join(f"* {DISPLAY_NAMES.get(m, m)}: n/a — {na[m]}" for m in models if m in na)


def _training_table(summary: Summary, models: list[str], per_model: dict[str, Any]) -> str:
    rows = [
        "| model | best epoch (per seed) | last epoch (per seed) | stopped at cap | "
        "train seconds |",
        "|---|---|---|---|---|",
    ]
    for m in models:
        info = per_model.get(m)
        if not info:
            continue
        cap = "**yes**" if any(info["cap"]) else "no"
        secs = summary.get(m, {}).get("train_seconds")
        rows.append(
            f"| {DISPLAY_NAMES.get(m, m)} | {', '.join(str(e) for e in info['best'])} | "
            f"{', '.join(str(e) for e in info['last'])} | {cap} | "
            f"{'–' if secs is None else format(secs['mean'], '.1f')} |"
        )
    return "\n".join(rows)


def _paired_table(tests: list[dict[str, Any]]) -> str:
    if not tests:
        return "_no DP-GCN run, or no baseline, in this report_"
    rows = [
        "| DP-GCN vs | metric | users | difference | 95% interval | p | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in tests:
        rows.append(
            f"| {DISPLAY_NAMES.get(t['rival'], t['rival'])} ({t['role']}) | {t['metric']} | "
            f"{t['users']} | {t['diff']:+.4f} | [{t['lo']:+.4f}, {t['hi']:+.4f}] | "
            f"{t['p']:.3f} | **{t['verdict']}** |"
        )
    return "\n".join(rows)


def write_markdown(
    path: Path, summary: Summary, models: list[str], context: dict[str, Any]
) -> None:
    seeds = context.get("seeds", [])
    na = context.get("na") or {}
    per_model = context.get("epochs_by_model") or {}
    lines = [
        _title(context),
        "",
        f"Export: `{context.get('export_dir', '')}`; counts (seed 0): {context.get('counts', {})}.",
        f"Seeds: {list(seeds)} — figures are mean ± sample std over the seeds; full-ranking "
        "metrics also carry a 95% bootstrap interval over users ([lo, hi]: each user's value "
        "averaged over the seeds, users resampled 2,000 times).",
        f"Split: {_protocol_text(context)}.",
        "",
        f"Training rule (every model): at most {context.get('epochs')} epochs; after every "
        f"epoch validation {context.get('select_metric')} (full ranking, validation users) "
        f"picks the best epoch, whose weights are kept; stop after {context.get('patience')} "
        "epochs without improvement. DDPG α is chosen on the same validation metric. Test "
        "data is never used for selection. A best epoch at the cap is flagged.",
        "",
    ]
    if na:
        lines += ["Models that cannot take part:", "", _na_rows(models, na), ""]
    lines += [
        "## Top-K recommendation — full ranking",
        "Each test user's held-out items ranked against every item the user has not "
        "interacted with (training and validation items removed); every held-out item is "
        "relevant: recall@K = hits / held-out items, NDCG's ideal list has min(held-out, K) "
        f"relevant items. At most {context.get('eval_max_users')} test users (sampled with the "
        "seed). Ties count against the held-out items.",
        "",
        _table(summary, models, TOPK_COLUMNS, na=na),
        "",
        "### 95% bootstrap intervals over users",
        "",
        _ci_table(summary, models, CI_COLUMNS),
        "",
        "### DP-GCN: paired bootstrap tests",
        "Per user, DP-GCN's metric minus the rival's (both averaged over the seeds), users "
        "resampled 2,000 times; **tie** where the 95% interval of the mean difference covers "
        "0. The best baseline is the non-DP-GCN model with the highest mean NDCG@10.",
        "",
        _paired_table(context.get("paired") or []),
        "",
        "## Training: best and last epochs",
        "",
        _training_table(summary, models, per_model),
        "",
        "## Click prediction (DIN protocol)",
        f"Each held-out interaction vs {context.get('click_negatives')} sampled items the "
        "user never interacted with. AUC pooled over pairs, GAUC per user. "
        + _relaimpr_note(summary, context),
        "",
        _table(summary, models, CLICK_COLUMNS),
        "",
        f"## Top-K recommendation — sampled ranking ({context.get('sampled_candidates')} "
        "candidates)",
        f"Each held-out item among {context.get('sampled_candidates')} candidates "
        f"(1 positive + {int(context.get('sampled_candidates', 1)) - 1} sampled negatives).",
        "",
        _table(summary, models, TOPK_COLUMNS, prefix="sampled_"),
        "",
        "## Query suggestion",
        "Each user's held-out (last) searched query ranked against every query they did not "
        "search in training.",
        "",
        _table(summary, models, ("query_mrr", "query_ndcg@5", "query_ndcg@10")),
        "",
        *_oracle_section(summary, models),
        *_query_task_section(summary, models, context.get("query_task") or {}),
        "Figures: `auc_relaimpr.png`, `training_curves.png`, `table_topk.png`.",
        "",
    ]
    path.write_text("\n".join(lines))


def _ci_table(summary: Summary, models: list[str], columns: tuple[str, ...]) -> str:
    head = "| model | " + " | ".join(columns) + " |"
    rows = [head, "|---|" + "---|" * len(columns)]
    for m in models:
        cells = [_fmt_ci(summary.get(m, {}).get(c)) for c in columns]
        if all(c == "–" for c in cells):
            continue
        rows.append(f"| {DISPLAY_NAMES.get(m, m)} | " + " | ".join(cells) + " |")
    return "\n".join(rows) if len(rows) > 2 else "_no model reported these metrics_"


ORACLE_COLUMNS = (
    "ndcg@10",
    "ndcg@10_vs_oracle",
    "hr@10_vs_oracle",
    "sampled_ndcg@10_vs_oracle",
    "auc_vs_oracle",
)
QUERY_TASK_COLUMNS = tuple(
    f"competition_{c}"
    for c in (
        "map@5",
        "val_map@5",
        "blend_map@5",
        "blend_val_map@5",
        "blend_lambda",
        "smoothed_map@5",
        "smoothed_val_map@5",
        "heldout_map@5",
        "smoothed_heldout_map@5",
        "smoothed_blend_map@5",
    )
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
    context: dict[str, Any] | None = None,
) -> list[Path]:
    """Bar chart of AUC (axis from 0.5) and RelaImpr, training curves (one distinguishable
    line per model: colour, line style and marker all differ), and a table image."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    context = context or {}
    title = _title(context).lstrip("# ").replace("`", "")
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

    select = f"val_{context.get('select_metric', 'ndcg@10')}"
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
    ax.set_title(f"{title}\nTop-K (full ranking), mean ± std over seeds", fontsize=9)
    fig.tight_layout()
    path = out_dir / "table_topk.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)
    return written


def write_json(path: Path, summary: Summary, extra: dict[str, Any] | None = None) -> None:
    """``results.json``: model → metric → cell; ``extra`` (paired tests, n/a models) under
    the key ``"_report"``."""
    clean: dict[str, Any] = {
        m: {
            k: {s: (v if math.isfinite(v) else None) for s, v in cell.items()}
            for k, cell in d.items()
        }
        for m, d in summary.items()
    }
    if extra:
        clean["_report"] = extra
    path.write_text(json.dumps(clean, indent=2, sort_keys=True, default=float))
