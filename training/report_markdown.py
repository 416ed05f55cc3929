"""The text of an evaluation report: ``results.md``, its tables and sections, from the
summary that :mod:`training.report` builds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from training.models import DISPLAY_NAMES
from training.report_figures import Summary, format_cell

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
#: Full-ranking metrics that get bootstrap intervals and paired tests in ``results.md``.
CI_COLUMNS = ("ndcg@10", "recall@10", "hr@10", "precision@10", "map@10", "ndcg@5", "mrr")
BASE_MODEL = "embedding_mlp"
#: Report titles of the datasets `dpgcn evaluate` knows.
DATASET_TITLES = {
    "movielens": "MovieLens-100K",
    "bestbuy": "Best Buy search → click (small)",
    "synthetic": "Synthetic (planted preference model)",
    "synthetic-cold": "Synthetic, sparse/cold mode (planted preference model)",
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


def _fmt_ci(cell: dict[str, float] | None) -> str:
    """``mean over users [lo, hi]``: the interval with its own centre (the mean over seeds
    for reports written before ``user_mean`` existed)."""
    if cell is None or "lo" not in cell:
        return "–"
    centre = cell.get("user_mean", cell["mean"])
    return f"{centre:.4f} [{cell['lo']:.4f}, {cell['hi']:.4f}]"


# ------------------------------------------------------------------------- run files -> report


def _table(
    summary: Summary,
    models: list[str],
    columns: tuple[str, ...],
    prefix: str = "",
    na: dict[str, str] | None = None,
) -> str:
    return _rows(
        models,
        columns,
        lambda m: [
            format_cell(summary.get(m, {}).get(prefix + c), percent=c == "relaimpr")
            for c in columns
        ],
        na,
    )


def _rows(
    models: list[str],
    columns: tuple[str, ...],
    cells_of: Callable[[str], list[str]],
    na: dict[str, str] | None,
) -> str:
    """A markdown table: a row per model with any value, "n/a" across the row of a model in
    ``na``; "no model reported" when no model has a value (n/a rows alone make no table)."""
    rows = ["| model | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    reported = False
    for m in models:
        if na and m in na:
            cells = ["n/a"] * len(columns)
        else:
            cells = cells_of(m)
            if all(c == "–" for c in cells):
                continue
            reported = True
        rows.append(f"| {DISPLAY_NAMES.get(m, m)} | " + " | ".join(cells) + " |")
    return "\n".join(rows) if reported else "_no model reported these metrics_"


def title_of(context: dict[str, Any]) -> str:
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


#: Why a model cannot score a cold item (cold-item protocol), as the report explains its n/a.
COLD_NA_WHY = {
    "popularity": "it scores an item by its training interactions; every cold item has none, "
    "so all of them would tie below every other item",
    "itemknn": "it scores an item by co-occurrence with the user's training items; a cold "
    "item co-occurs with nothing",
    "query_frequency": "it scores an item by its query clicks (`LED_TO`); a cold item has none",
    "lightgcn": "ID embeddings only: a cold item's embedding is its untrained random start and "
    "it has no interaction edge to propagate from",
    "lightgcn_pyg": "ID embeddings only (as LightGCN)",
    "gcn": "ID embeddings only (as LightGCN)",
    "dgcn": "ID embeddings only (as LightGCN)",
    "embedding_mlp": "an item is its ID embedding plus its categories' mean embedding; a cold "
    "item's ID embedding is untrained (random), and the model does not declare that it can "
    "score from categories alone (`RecModel.inductive` is false)",
    "wide_deep": "as Embedding&MLP (item ID + category embeddings, the cold item's ID part "
    "untrained)",
    "pnn": "as Embedding&MLP (item ID + category embeddings, the cold item's ID part untrained)",
    "din": "as Embedding&MLP (item ID + category embeddings, the cold item's ID part untrained)",
}


def _na_rows(models: list[str], na: dict[str, str], protocol: str | None = None) -> str:
    if not na:
        return ""
    lines = []
    for m in models:
        if m not in na:
            continue
        why = COLD_NA_WHY.get(m) if protocol == "cold-item" else None
        lines.append(f"* {DISPLAY_NAMES.get(m, m)}: n/a — {na[m]}" + (f"; {why}." if why else ""))
    return "\n".join(lines)


def _na_intro(protocol: str | None) -> list[str]:
    if protocol != "cold-item":
        return ["Models that cannot take part:", ""]
    return [
        "Models that cannot take part: they cannot score an item without training "
        "interactions, so they are not trained and every table shows them as n/a instead of "
        "ranking the held-out items at random (or all tied) in silence. The comparison is "
        "between the rows with numbers.",
        "",
    ]


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
        if any(info.get("budget", ())):  # optim.max_train_seconds ended the epochs
            cap += "; time budget: **yes**"
        secs = summary.get(m, {}).get("train_seconds")
        rows.append(
            f"| {DISPLAY_NAMES.get(m, m)} | {', '.join(str(e) for e in info['best'])} | "
            f"{', '.join(str(e) for e in info['last'])} | {cap} | "
            f"{'–' if secs is None else format(secs['mean'], '.1f')} |"
        )
    return "\n".join(rows)


def _paired_table(tests: list[dict[str, Any]], na: dict[str, str] | None = None) -> str:
    if not tests:
        if na:
            return (
                "_no baseline with numbers in this report (every baseline here is n/a, see "
                "above), or no DP-GCN run_"
            )
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
        title_of(context),
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
    protocol = context.get("protocol")
    if na:
        lines += [*_na_intro(protocol), _na_rows(models, na, protocol), ""]
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
        "Mean over users [95% interval]: each user's value averaged over the seeds that "
        "tested the user, then averaged over users. It equals the mean over seeds above when "
        "every seed tests the same users; under cold-item each seed holds out other items, "
        "hence other users, and the two can differ.",
        "",
        _ci_table(summary, models, CI_COLUMNS, na),
        "",
        "### DP-GCN: paired bootstrap tests",
        "Per user, DP-GCN's metric minus the rival's (both averaged over the seeds), users "
        "resampled 2,000 times; **tie** where the 95% interval of the mean difference covers "
        "0. The best baseline is the non-DP-GCN model with the highest mean NDCG@10; every "
        "other baseline is compared on NDCG@10 only.",
        "",
        _paired_table(context.get("paired") or [], na),
        "",
        "## Training: best and last epochs",
        "",
        _training_table(summary, models, per_model),
        "",
        *_policy_section(context.get("ddpg_alpha") or {}),
        "## Click prediction (DIN protocol)",
        f"Each held-out interaction vs {context.get('click_negatives')} sampled items the "
        "user never interacted with. AUC pooled over pairs, GAUC per user. "
        + _relaimpr_note(summary, context),
        "",
        _table(summary, models, CLICK_COLUMNS, na=na),
        "",
        f"## Top-K recommendation — sampled ranking ({context.get('sampled_candidates')} "
        "candidates)",
        f"Each held-out item among {context.get('sampled_candidates')} candidates "
        f"(1 positive + {int(context.get('sampled_candidates', 1)) - 1} sampled negatives).",
        "",
        _table(summary, models, TOPK_COLUMNS, prefix="sampled_", na=na),
        "",
        "## Query suggestion",
        "Each user's held-out (last) searched query ranked against every query they did not "
        "search in training.",
        "",
        _table(summary, models, ("query_mrr", "query_ndcg@5", "query_ndcg@10"), na=na),
        "",
        *_oracle_section(summary, models),
        *_query_task_section(summary, models, context.get("query_task") or {}),
        "Figures: `auc_relaimpr.png`, `training_curves.png`, `table_topk.png`.",
        "",
    ]
    path.write_text("\n".join(lines))


def _ci_table(
    summary: Summary, models: list[str], columns: tuple[str, ...], na: dict[str, str] | None = None
) -> str:
    return _rows(
        models, columns, lambda m: [_fmt_ci(summary.get(m, {}).get(c)) for c in columns], na
    )


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


def _policy_section(alphas: dict[str, list[float]]) -> list[str]:
    """Per seed, the DDPG weight α that validation chose; α = 0 means the policy is off and
    that seed's scores are the supervised model's."""
    if not alphas:
        return []
    rows = ["| model | α per seed | decision layer |", "|---|---|---|"]
    for m, values in alphas.items():
        off = sum(1 for a in values if a == 0.0)
        if off == len(values):
            state = "**off** on every seed (validation chose α = 0)"
        elif off:
            state = f"off on {off} of {len(values)} seeds (α = 0 chosen on validation)"
        else:
            state = "on for every seed"
        shown = ", ".join(format(a, "g") for a in values)
        rows.append(f"| {DISPLAY_NAMES.get(m, m)} | {shown} | {state} |")
    return [
        "## Decision layer (DDPG)",
        "The policy's weight α in `score = <u, i> + α·scale·<a(s), i>` is chosen per seed on "
        "the validation metric; α = 0 turns the policy off, and that seed's scores are "
        "the supervised model's (DP-GCN w/o DDPG).",
        "",
        *rows,
        "",
    ]
