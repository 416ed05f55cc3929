"""Evaluation runner: every model of the registry on the same splits, over several seeds.

``evaluate(export_dir, out_dir, models, seeds)`` trains each model once per seed on that seed's
split of ``config.eval.protocol`` (the same split for every model), under one training rule
(:func:`training.train.fit`: epoch cap, early stopping on the validation selection metric),
evaluates the test protocols of :mod:`training.protocols`, and writes one run file per
(model, seed) under ``out_dir/runs/`` (metrics, training curve, per-user ranking metrics).
Runs already there with the same settings are kept, so a long evaluation can be split into
several invocations (per model, per seed) and the reports are rebuilt from every run present:
``results.json`` (model → metric → {"mean", "std", "n", "lo", "hi"}), ``results.md``,
``runs.json`` and figures (:mod:`training.report`). Model selection only ever uses the
validation split.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from training.config import TrainConfig
from training.data import ExportGraph, load_export
from training.errors import ConfigError
from training.loop import NotInductiveError, fit, split_for
from training.models import MODEL_REGISTRY
from training.oracle import ORACLE, load_oracle
from training.query_task import (
    QueryTask,
    coverage,
    load_query_rows,
    query_task_metrics,
    validation_rows,
)
from training.report import Summary, build_reports, same_settings
from training.train import evaluate_fit, evaluate_scorer

logger = logging.getLogger(__name__)

BASE_MODEL = "embedding_mlp"
#: Metrics also reported as a fraction of the oracle's (synthetic exports with ``oracle.npz``).
ORACLE_RATIOS = ("ndcg@10", "hr@10", "auc", "sampled_ndcg@10")


RUNS_DIR = "runs"


def run_path(out_dir: Path, model: str, seed: int) -> Path:
    return Path(out_dir) / RUNS_DIR / f"{model}.seed{seed}.json"


def check_models(models: Sequence[str] | None) -> list[str]:
    """The model names to run (default: every registered model); unknown names raise a
    :class:`ConfigError` that lists the valid ones."""
    names = list(models) if models else list(MODEL_REGISTRY)
    unknown = [m for m in names if m not in MODEL_REGISTRY]
    if unknown:
        raise ConfigError(
            f"unknown model(s): {', '.join(unknown)}; valid: {', '.join(MODEL_REGISTRY)}"
        )
    return names


def _settings(config: TrainConfig) -> dict[str, Any]:
    """What a stored run must share with the current one to be reused (every setting by its
    dotted path but the model's name, the seed and the device)."""
    d = config.to_paths()
    for key in ("model.name", "seed", "device"):
        d.pop(key)
    return d


def _load_run(path: Path, settings: dict[str, Any], model: str) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        run = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    return run if same_settings(run.get("settings"), settings, model) else None


def _write_run(path: Path, run: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(run, default=_json_default, separators=(",", ":")))
    tmp.replace(path)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [round(float(v), 7) for v in value.tolist()]
    if isinstance(value, np.floating | np.integer):
        return value.item()
    raise TypeError(type(value).__name__)


def _finite(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in d.items()}


def evaluate(
    export_dir: Path,
    out_dir: Path,
    models: list[str] | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    progress: Callable[[dict[str, Any]], None] | None = None,
    config: TrainConfig | None = None,
    dataset: str | None = None,
    reuse: bool = True,
    tuned: dict[str, dict[str, Any]] | None = None,
) -> Summary:
    """Train and evaluate ``models`` (default: all) for each seed; write the run files and
    rebuild the reports from every run in ``out_dir`` with the same settings.

    ``config`` holds the shared hyper-parameters and the protocol (its ``model`` and ``seed``
    are overridden). RelaImpr is measured against Embedding&MLP of the same seed when its run
    is present. When the export holds a planted-model oracle (``oracle.npz``,
    :mod:`training.oracle`) its scores are evaluated by the same protocols on the same splits
    (row ``oracle``) and every model gets ``<metric>_vs_oracle`` = model / oracle per seed.
    When it holds query-conditioned test rows (``query_task.npz``, :mod:`training.query_task`)
    every model that can rank for a query gets ``map@5``. Under the cold-item protocol a model
    that cannot score unseen items (``RecModel.inductive`` false) is recorded as "n/a".
    ``reuse`` keeps stored runs with the same settings instead of training them again.
    ``tuned`` (model → TrainConfig changes, :func:`training.tuning.load_tuned`) replaces the
    shared settings per model; it becomes part of the runs' settings.
    Progress events: ``{"seed", "model", "run", "runs", "start": True}`` before a run, per
    epoch ``{"seed", "model", "epoch", "epochs", "loss", "val_auc", "val_<metric>"}``, and
    ``{"seed", "model", "run", "runs", "done": True, "ndcg@10": ...}`` after it.
    """
    base = config or TrainConfig()
    names = check_models(models)
    if not seeds:
        raise ConfigError("at least one seed is needed")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    graph = load_export(Path(export_dir))
    oracle = load_oracle(Path(export_dir), graph)
    settings = _settings(base)
    if tuned:
        settings["tuned"] = json.loads(json.dumps(tuned, sort_keys=True))
    start = time.perf_counter()
    total = len(seeds) * len(names)
    done = 0
    for seed in seeds:
        split = split_for(graph, base, seed)
        if oracle is not None and (
            not reuse or _load_run(run_path(out_dir, ORACLE, seed), settings, ORACLE) is None
        ):
            per_user: dict[str, Any] = {}
            metrics = evaluate_scorer(
                oracle, split, base.replace({"seed": seed}), "test", logits=False, per_user=per_user
            )
            _write_run(
                run_path(out_dir, ORACLE, seed),
                {
                    "model": ORACLE,
                    "seed": seed,
                    "settings": settings,
                    "metrics": _finite(metrics),
                    "per_user": per_user,
                    "history": [],
                },
            )
        task_parts = _query_task(Path(export_dir), split)
        for name in names:
            path = run_path(out_dir, name, seed)
            if reuse and _load_run(path, settings, name) is not None:
                done += 1
                logger.info("seed %d %s: kept the stored run %s", seed, name, path)
                if progress is not None:
                    progress(
                        {
                            "seed": seed,
                            "model": name,
                            "run": done,
                            "runs": total,
                            "done": True,
                            "kept": True,
                        }
                    )
                continue
            if progress is not None:
                progress(
                    {"seed": seed, "model": name, "run": done + 1, "runs": total, "start": True}
                )
            model_base = base.replace((tuned or {}).get(name, {}))
            run = _train_one(name, seed, split, model_base, settings, task_parts, progress)
            _write_run(path, run)
            done += 1
            if progress is not None:
                progress(
                    {
                        "seed": seed,
                        "model": name,
                        "run": done,
                        "runs": total,
                        "done": True,
                        "ndcg@10": (run["metrics"] or {}).get("ndcg@10"),
                    }
                )
    summary = build_reports(out_dir, settings, _context(export_dir, graph, base, dataset))
    logger.info(
        "evaluation of %d models x %d seeds took %.1fs",
        len(names),
        len(seeds),
        time.perf_counter() - start,
    )
    return summary


def _query_task(export_dir: Path, split: Any) -> tuple[Any, ...] | None:
    test_rows = load_query_rows(export_dir, split)
    if test_rows is None:
        return None
    task = QueryTask(split)
    val_rows = validation_rows(split)
    return (
        task,
        val_rows,
        test_rows,
        task.query_frequency(val_rows),
        task.query_frequency(test_rows),
        {"test": coverage(test_rows), "val": coverage(val_rows)},
    )


def _train_one(
    name: str,
    seed: int,
    split: Any,
    base: TrainConfig,
    settings: dict[str, Any],
    task_parts: tuple[Any, ...] | None,
    progress: Callable[[dict[str, Any]], None] | None,
) -> dict[str, Any]:
    cfg = base.replace({"model.name": name, "seed": seed})

    def on_epoch(event: dict[str, Any]) -> None:
        if progress is not None:
            progress({"seed": seed, "model": name, **event})

    run: dict[str, Any] = {"model": name, "seed": seed, "settings": settings}
    try:
        result = fit(split, cfg, on_epoch)
    except NotInductiveError as e:
        logger.info("seed %d %s: n/a (%s)", seed, name, e)
        return {**run, "metrics": None, "na": str(e), "per_user": {}, "history": []}
    per_user: dict[str, Any] = {}
    metrics = evaluate_fit(result, "test", per_user)
    metrics["train_seconds"] = result.train_seconds
    metrics["best_epoch"] = float(result.best_epoch)
    metrics["last_epoch"] = float(result.last_epoch)
    metrics["stopped_at_cap"] = float(result.stopped_at_cap)
    metrics["stopped_at_budget"] = float(result.stopped_at_budget)
    metrics[f"val_{cfg.eval.select_metric}"] = result.best_val
    if result.policy is not None:
        metrics["ddpg_alpha"] = result.policy.alpha
    if task_parts is not None:
        task, val_rows, test_rows, qf_val, qf_test, _ = task_parts
        metrics.update(
            query_task_metrics(
                task, val_rows, test_rows, name, result.scorer("test"), qf_val, qf_test
            )
        )
    logger.info(
        "seed %d %s: ndcg@10 %.4f auc %.4f, best epoch %d of %d (%.1fs)",
        seed,
        name,
        metrics.get("ndcg@10", float("nan")),
        metrics.get("auc", float("nan")),
        result.best_epoch,
        result.last_epoch,
        result.train_seconds,
    )
    return {**run, "metrics": _finite(metrics), "per_user": per_user, "history": result.history}


def _context(
    export_dir: Path, graph: ExportGraph, base: TrainConfig, dataset: str | None
) -> dict[str, Any]:
    split = split_for(graph, base, 0)
    counts = {
        "users": split.n_users,
        "items": split.n_items,
        "queries": split.n_queries,
        "train": len(split.train),
        "val": len(split.val),
        "test": len(split.test),
        "test_users": len(np.unique(split.test.row)),
    }
    if len(split.cold_items):
        counts["cold_test_items"] = len(split.cold_items)
    parts = _query_task(Path(export_dir), split)
    return {
        "dataset": dataset or Path(export_dir).name,
        "export_dir": str(export_dir),
        "counts": counts,
        "protocol": base.eval.protocol,
        "ratios": list(base.eval.ratios),
        "cold_share": base.eval.cold_share,
        "click_negatives": base.eval.click_negatives,
        "sampled_candidates": min(base.eval.sampled_candidates, max(split.n_items, 1)),
        "eval_max_users": base.eval.max_users,
        "min_interactions": base.eval.min_interactions,
        "epochs": base.optim.epochs,
        "patience": base.optim.patience,
        "select_metric": base.eval.select_metric,
        "base_model": BASE_MODEL,
        "query_task": parts[-1] if parts is not None else {},
    }
