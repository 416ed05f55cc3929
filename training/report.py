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

from training.config import TrainConfig
from training.config_paths import settings_differ
from training.metrics import bootstrap_ci, paired_bootstrap, relaimpr
from training.models import MODEL_REGISTRY, others_settings
from training.report_figures import Summary, write_figures
from training.report_markdown import BASE_MODEL, CI_COLUMNS, title_of, write_markdown

logger = logging.getLogger(__name__)


#: The proposed model and its variants (everything else is a baseline).
OURS = ("dpgcn", "dpgcn_no_ddpg", "dgcn")
TARGET = "dpgcn"
ORACLE = "oracle"
ORACLE_RATIOS = ("ndcg@10", "hr@10", "auc", "sampled_ndcg@10")


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


def same_settings(
    stored: dict[str, Any] | None, current: dict[str, Any], model: str | None = None
) -> bool:
    """Whether a stored run of ``model`` was made with the current settings: the same values,
    a ``TrainConfig`` setting that one side lacks (added to or removed from the code since)
    counting as its default value, as ``dpgcn tune`` compares its stored studies. Settings are
    compared by dotted path (:func:`training.config_paths.config_paths`), so a run stored before
    TrainConfig had sections (flat names) matches the same settings today. Another model
    family's own settings (``model.dpgcn.*`` for LightGCN) are not compared: ``model`` does
    not read them. Of the tuned
    configurations (``"tuned"``: model → changes) only ``model``'s own entry counts, so a
    model tuned again does not invalidate the stored runs of the others."""
    if stored is None:
        return False
    stored, current = dict(stored), dict(current)
    old_tuned, new_tuned = stored.pop("tuned", None) or {}, current.pop("tuned", None) or {}
    old_changes, new_changes = old_tuned.get(model), new_tuned.get(model)
    if (old_changes is None) != (new_changes is None):
        return False
    unread = others_settings(model)
    if old_changes is not None and settings_differ(
        TrainConfig, old_changes, new_changes or {}, unread
    ):
        return False
    return not settings_differ(TrainConfig, stored, current, unread)


def load_runs(out_dir: Path, settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Every run file under ``out_dir/runs`` made with ``settings``, in registry order."""
    runs = []
    for path in sorted((Path(out_dir) / "runs").glob("*.json")):
        try:
            run = json.loads(path.read_text())
        except json.JSONDecodeError:
            logger.warning("skipping unreadable run file %s", path)
            continue
        if same_settings(run.get("settings"), settings, run.get("model")):
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
                values = list(vec.values())
                lo, hi = bootstrap_ci(values)
                summary[m][metric]["lo"], summary[m][metric]["hi"] = lo, hi
                summary[m][metric]["users"] = float(len(vec))
                # The interval's own centre: the mean over users. It differs from the mean
                # over seeds when the seeds test different users (cold-item: each seed holds
                # out other items, so other users), and is what the interval is shown with.
                summary[m][metric]["user_mean"] = float(np.mean(values))
    tests = paired_tests(by_model, summary)
    models = [m for m in [*MODEL_REGISTRY, ORACLE] if m in by_model]
    curves = {m: rs[0].get("history", []) for m, rs in by_model.items() if rs}
    epochs_by_model = {
        m: {
            "best": [int(_num(r["metrics"].get("best_epoch"))) for r in rs if r.get("metrics")],
            "last": [int(_num(r["metrics"].get("last_epoch"))) for r in rs if r.get("metrics")],
            "cap": [bool(r["metrics"].get("stopped_at_cap")) for r in rs if r.get("metrics")],
            "budget": [bool(r["metrics"].get("stopped_at_budget")) for r in rs if r.get("metrics")],
        }
        for m, rs in by_model.items()
        if m != ORACLE and any(r.get("metrics") for r in rs)
    }
    alphas = {
        m: [_num(r["metrics"].get("ddpg_alpha")) for r in rs if r.get("metrics")]
        for m, rs in by_model.items()
        if any("ddpg_alpha" in (r.get("metrics") or {}) for r in rs)
    }
    ctx = {
        **context,
        "ddpg_alpha": alphas,
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
    title = title_of(ctx).lstrip("# ").replace("`", "")
    write_figures(out_dir, summary, models, curves, title, str(ctx.get("select_metric", "ndcg@10")))
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
    bootstrap over the users both ranked, per metric of :data:`CI_COLUMNS`; against every
    other baseline on NDCG@10 alone (role ``"baseline"``), so a report can say whether DP-GCN
    is at least every baseline's equal."""
    if TARGET not in by_model or TARGET not in summary:
        return []
    baselines = [
        m for m in by_model if m not in (*OURS, ORACLE) and "ndcg@10" in summary.get(m, {})
    ]
    baselines.sort(key=lambda m: -summary[m]["ndcg@10"]["mean"])
    rivals: list[tuple[str, str, tuple[str, ...]]] = []
    if baselines:
        rivals.append((baselines[0], "best baseline", CI_COLUMNS))
    if "dpgcn_no_ddpg" in summary:
        rivals.append(("dpgcn_no_ddpg", "ablation", CI_COLUMNS))
    rivals.extend((m, "baseline", ("ndcg@10",)) for m in baselines[1:])
    out = []
    for rival, role, metrics in rivals:
        for metric in metrics:
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
