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
from training.report import Summary, aggregate, write_figures, write_json, write_markdown
from training.train import evaluate_fit, fit

logger = logging.getLogger(__name__)

BASE_MODEL = "embedding_mlp"


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
    Embedding&MLP is added when missing, since RelaImpr is measured against it. Progress events:
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
    per_seed: dict[str, list[dict[str, float]]] = {m: [] for m in names}
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
        for name in names:
            per_seed[name][-1]["relaimpr"] = relaimpr(per_seed[name][-1]["auc"], base_auc)
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
    }
    write_markdown(out_dir / "results.md", summary, names, context)
    write_figures(out_dir, summary, names, curves)
    logger.info(
        "evaluation of %d models x %d seeds took %.1fs",
        len(names),
        len(seeds),
        time.perf_counter() - start,
    )
    return summary
