"""Evaluation runner: every model of the registry on the same splits, over several seeds.

``evaluate(export_dir, out_dir, models, seeds)`` trains each model once per seed on that seed's
split (the same split for every model), evaluates the test protocols of
:mod:`training.protocols`, computes RelaImpr against Embedding&MLP of the same seed, and writes
``results.json`` (model → metric → {"mean", "std", "n"}), ``results.md`` and figures. Model
selection only ever uses the validation split.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from training.config import TrainConfig
from training.data import load_export, split_interactions
from training.errors import ConfigError
from training.metrics import relaimpr
from training.models import MODEL_REGISTRY
from training.oracle import ORACLE, load_oracle
from training.query_task import (
    QueryTask,
    coverage,
    load_query_rows,
    query_task_metrics,
    validation_rows,
)
from training.report import Summary, aggregate, write_figures, write_json, write_markdown
from training.train import evaluate_fit, evaluate_scorer, fit

logger = logging.getLogger(__name__)

BASE_MODEL = "embedding_mlp"
#: Metrics also reported as a fraction of the oracle's (synthetic exports with ``oracle.npz``).
ORACLE_RATIOS = ("ndcg@10", "hr@10", "auc", "sampled_ndcg@10")


def evaluate(
    export_dir: Path,
    out_dir: Path,
    models: list[str] | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    progress: Callable[[dict[str, Any]], None] | None = None,
    config: TrainConfig | None = None,
) -> Summary:
    """Train and evaluate ``models`` (default: all) for each seed; write the reports.

    ``config`` holds the shared hyper-parameters (its ``model`` and ``seed`` are overridden).
    Embedding&MLP is added when missing, since RelaImpr is measured against it. When the export
    holds a planted-model oracle (``oracle.npz``, :mod:`training.oracle`) its scores are
    evaluated by the same protocols on the same splits (row ``oracle``) and every model gets
    ``<metric>_vs_oracle`` = model / oracle per seed. When it holds query-conditioned test rows
    (``query_task.npz``, :mod:`training.query_task`) every model that can rank for a query
    gets ``map@5`` (and graph models the validated query-frequency blend). Progress events:
    per epoch ``{"seed", "model", "epoch", "epochs", "loss", "val_auc"}`` and per finished run
    ``{"seed", "model", "done": True, "auc": ...}``.
    """
    base = config or TrainConfig()
    names = list(models) if models else list(MODEL_REGISTRY)
    unknown = [m for m in names if m not in MODEL_REGISTRY]
    if unknown:
        raise ConfigError(f"unknown model(s): {', '.join(unknown)}")
    if BASE_MODEL not in names:
        logger.info("adding %s: RelaImpr is measured against it", BASE_MODEL)
        names.insert(0, BASE_MODEL)
    if not seeds:
        raise ConfigError("at least one seed is needed")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    graph = load_export(Path(export_dir))
    oracle = load_oracle(Path(export_dir), graph)
    per_seed: dict[str, list[dict[str, float]]] = {m: [] for m in names}
    if oracle is not None:
        per_seed[ORACLE] = []
    task_context: dict[str, Any] = {}
    curves: dict[str, list[dict[str, float]]] = {}
    counts: dict[str, int] = {}
    start = time.perf_counter()
    for seed in seeds:
        split = split_interactions(graph, seed, base.reward_of(), base.min_interactions)
        counts = {
            "users": split.n_users,
            "items": split.n_items,
            "queries": split.n_queries,
            "train": len(split.train),
            "test_users": len(split.test),
        }
        test_rows = load_query_rows(Path(export_dir), split)
        task = None
        if test_rows is not None:
            task = QueryTask(split)
            val_rows = validation_rows(split)
            qf_val, qf_test = task.query_frequency(val_rows), task.query_frequency(test_rows)
            task_context = {"test": coverage(test_rows), "val": coverage(val_rows)}
        if oracle is not None:
            cfg = base.replace(seed=seed)
            per_seed[ORACLE].append(evaluate_scorer(oracle, split, cfg, "test", logits=False))
        for name in names:
            cfg = base.replace(model=name, seed=seed)

            def on_epoch(event: dict[str, Any], name: str = name, seed: int = seed) -> None:
                if progress is not None:
                    progress({"seed": seed, "model": name, **event})

            result = fit(split, cfg, on_epoch)
            metrics = evaluate_fit(result, "test")
            metrics["train_seconds"] = result.train_seconds
            metrics["best_epoch"] = float(result.best_epoch)
            if result.policy is not None:
                metrics["ddpg_alpha"] = result.policy.alpha
            if task is not None and test_rows is not None:
                metrics.update(
                    query_task_metrics(
                        task, val_rows, test_rows, name, result.scorer("test"), qf_val, qf_test
                    )
                )
            per_seed[name].append(metrics)
            if seed == seeds[0]:
                curves[name] = result.history
            logger.info(
                "seed %d %s: auc %.4f ndcg@10 %.4f (%.1fs)",
                seed,
                name,
                metrics.get("auc", float("nan")),
                metrics.get("ndcg@10", float("nan")),
                result.train_seconds,
            )
            if progress is not None:
                progress({"seed": seed, "model": name, "done": True, "auc": metrics.get("auc")})
        base_auc = per_seed[BASE_MODEL][-1]["auc"]
        for name in per_seed:
            run = per_seed[name][-1]
            run["relaimpr"] = relaimpr(run["auc"], base_auc)
            if oracle is not None:
                ref = per_seed[ORACLE][-1]
                for key in ORACLE_RATIOS:
                    if key in run and ref.get(key):
                        run[f"{key}_vs_oracle"] = run[key] / ref[key]
        if oracle is not None:
            logger.info(
                "seed %d oracle: ndcg@10 %.4f; dpgcn / oracle %.3f",
                seed,
                per_seed[ORACLE][-1].get("ndcg@10", float("nan")),
                per_seed.get("dpgcn", [{}])[-1].get("ndcg@10_vs_oracle", float("nan"))
                if per_seed.get("dpgcn")
                else float("nan"),
            )
    summary = aggregate(per_seed)
    write_json(out_dir / "results.json", summary)
    (out_dir / "runs.json").write_text(
        json.dumps({"per_seed": per_seed, "curves": curves}, default=float, indent=1)
    )
    context = {
        "dataset": Path(export_dir).name,
        "export_dir": str(export_dir),
        "counts": counts,
        "seeds": list(seeds),
        "click_negatives": base.click_negatives,
        # the candidate set is smaller than configured when the catalogue is
        "sampled_candidates": int(
            max(
                (r.get("sampled_candidates", 0.0) for runs in per_seed.values() for r in runs),
                default=base.sampled_candidates,
            )
        ),
        "eval_max_users": base.eval_max_users,
        "min_interactions": base.min_interactions,
        "query_task": task_context,
    }
    shown = names + ([ORACLE] if oracle is not None else [])
    write_markdown(out_dir / "results.md", summary, shown, context)
    write_figures(out_dir, summary, shown, curves)
    logger.info(
        "evaluation of %d models x %d seeds took %.1fs",
        len(names),
        len(seeds),
        time.perf_counter() - start,
    )
    return summary
