"""Evaluation of a fitted model and the model-directory writer; the pipeline's entry point.

:func:`train_from_export` is the pipeline entry point: export dir in, model dir out
(``docs/export-format.md``), written to a temporary directory and renamed into place; it
trains with :func:`training.loop.fit`, or in ``TrainConfig.optim.processes`` data-parallel ranks
with :func:`training.distributed.fit_distributed`. The training loop
(:func:`~training.loop.fit`, :class:`~training.loop.FitResult`, …) lives in
:mod:`training.loop`.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.checkpoint import Checkpointer, fingerprint
from training.config import TrainConfig
from training.data import ITEM, QUERY, USER, load_export
from training.dataset import build_graph_data
from training.distributed import fit_distributed
from training.errors import TrainingError
from training.loop import (
    FitResult,
    ProgressFn,
    dot_vectors,
    fit,
    split_for,
)
from training.metrics import FloatVector
from training.models import check_trained_settings
from training.models.base import DotEncoding
from training.policy_stage import recent_items
from training.protocols import (
    Scorer,
    click_prediction,
    query_suggestion,
    rank_users,
    ranking_task,
    sampled_ranking,
)
from training.splits import Split, eval_candidates, split_interactions

logger = logging.getLogger(__name__)


def evaluate_fit(
    result: FitResult, which: str = "test", per_user: dict[str, FloatVector] | None = None
) -> dict[str, float]:
    """All protocols on the ``which`` split ("val" or "test") of a fitted model."""
    return evaluate_scorer(
        result.scorer(which),
        result.data.split,
        result.config,
        which,
        result.model.trainable,
        per_user,
    )


def evaluate_scorer(
    scorer: Scorer,
    split: Split,
    config: TrainConfig,
    which: str = "test",
    logits: bool = True,
    per_user: dict[str, FloatVector] | None = None,
) -> dict[str, float]:
    """All protocols on the ``which`` split of any scorer (a fitted model, or the planted
    oracle of a synthetic export): the same candidates, users and cut-offs for every scorer of
    one split. ``logits=False`` leaves out the log loss (scores that are not logits). When
    ``per_user`` is given it receives the full-ranking metrics per ranked user (key
    ``"users"``: the user rows), for bootstrap intervals."""
    users, pos, negs = eval_candidates(split, which, config.eval.sampled_candidates - 1)
    out: dict[str, float] = {}
    out.update(click_prediction(scorer, users, pos, negs[:, : config.eval.click_negatives]))
    if not logits:
        del out["logloss"]  # counts and similarities are not logits
    sampled = sampled_ranking(scorer, users, pos, negs, config.eval.top_k)
    out.update({f"sampled_{k}": v for k, v in sampled.items()})
    task = ranking_task(split, which, config.eval.max_users, config.seed)
    ranks = rank_users(scorer, split, task, config.eval.top_k) if len(task) else {}
    out.update({k: float(np.mean(v)) for k, v in ranks.items()})
    out["ranked_users"] = float(len(task))
    if per_user is not None:
        per_user.update(ranks)
        per_user["users"] = task.users.astype(np.float64)
    queries = query_suggestion(
        scorer, split, which, config.eval.top_k, config.eval.max_users, config.seed
    )
    for k, v in queries.items():
        out[f"query_{k}"] = v
    return out


# ---------------------------------------------------------------------------- model directory
def write_model_dir(result: FitResult, out_dir: Path, metrics: dict[str, Any]) -> None:
    """Write the model directory atomically: temp dir in the same parent, then rename."""
    enc = serving_encoding(result)
    if enc is None:
        raise TrainingError(
            f"model {result.config.model.name!r} is not a dot-product model and cannot be served "
            "from embeddings; use training.evaluate for it"
        )
    graph, split = result.data.split.graph, result.data.split
    user, item, query = dot_vectors(enc, result.data)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        arrays: dict[str, np.ndarray] = {
            "User.ids": graph.ids.get(USER, np.zeros(0, str)),
            "User.embedding": user.astype(np.float32),
            "Item.ids": graph.ids.get(ITEM, np.zeros(0, str)),
            "Item.embedding": item.astype(np.float32),
        }
        if query is not None and split.n_queries > 0:
            arrays["Query.ids"] = graph.ids[QUERY]
            arrays["Query.embedding"] = query.astype(np.float32)
        save_npz(tmp / "embeddings.npz", arrays)
        if USER in graph.x:
            save_npz(
                tmp / "user_features.npz", {"User.ids": arrays["User.ids"], "User.x": graph.x[USER]}
            )
        keys = result.model.state_keys(result.data)
        if keys is not None:  # lets new nodes reuse the trained rows (dpgcn.transfer_state)
            save_npz(tmp / "node_keys.npz", keys)
        (tmp / "train_config.json").write_text(result.config.to_json())
        (tmp / "metrics.json").write_text(json.dumps(_jsonable(metrics), indent=2))
        torch.save(
            {
                "format": 1,
                "model": result.config.model.name,
                "config": result.config.to_dict(),
                "state_dict": {k: v.detach().cpu() for k, v in result.model.state_dict().items()},
            },
            tmp / "model.pt",
        )
        if result.policy is not None:
            hist = recent_items(split, result.config.policy.state_history, "serve")
            result.policy.policy.save(
                tmp / "policy.pt", extra={"user_history": torch.as_tensor(hist)}
            )
        if out_dir.exists():
            old = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
            out_dir.rename(old)
            tmp.rename(out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def serving_encoding(result: FitResult) -> DotEncoding | None:
    """Vectors for serving: the trained weights propagated over the *complete* graph (the
    validation and test interactions and searches included), so the newest behaviour shapes
    the exported user vectors. Metrics stay those of the held-out protocol."""
    if result.encoding() is None:
        return None
    split = result.data.split
    full = split_interactions(split.graph, split.seed, result.config.policy.reward_of(), 2**62)
    result.model.use_graph(build_graph_data(full, result.device, result.config.model.history_len))
    try:
        return result.encoding()
    finally:
        result.model.use_graph(result.data)


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez`` of named arrays (keys such as ``User.ids`` are not identifiers)."""
    np.savez(path, **arrays)  # type: ignore[arg-type]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float | np.floating):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def load_checkpoint(path: Path) -> tuple[TrainConfig, dict[str, torch.Tensor]]:
    """Read ``model.pt``: the TrainConfig it was trained with and its state dict
    (ConfigError for DP-GCN weights whose settings cannot say how the model was built:
    :func:`training.models.check_trained_settings`)."""
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    config = TrainConfig.from_dict(payload["config"])
    check_trained_settings(config.model.name, payload["config"], path)
    return config, payload["state_dict"]


def train_from_export(
    export_dir: Path,
    out_dir: Path,
    config: TrainConfig,
    progress: ProgressFn | None = None,
    checkpoint_dir: Path | None = None,
) -> dict[str, Any]:
    """Train ``config.model.name`` on an export directory and write a model directory.

    With ``checkpoint_dir`` training checkpoints there and resumes from a checkpoint it finds
    (:func:`fit`); the checkpoint is deleted once the model directory is written. With
    ``config.optim.processes`` > 1 the epochs run in that many data-parallel ranks
    (:func:`training.distributed.fit_distributed`, one per GPU on CUDA).

    Calls ``progress({"epoch", "epochs", "loss", "val_auc"})`` after every epoch. Returns the
    metrics written to ``metrics.json`` (validation and test metrics of the leave-one-out
    protocol, per-epoch history, DDPG stage summary, timings).
    """
    start = time.perf_counter()
    graph = load_export(Path(export_dir))
    split = split_for(graph, config)
    if len(split.train) == 0:
        raise TrainingError(f"{export_dir} has no User → Item interactions to train on")
    if config.optim.processes > 1:
        result = fit_distributed(split, config, config.optim.processes, progress, checkpoint_dir)
    else:
        result = fit(split, config, progress, checkpoint_dir=checkpoint_dir)
    metrics: dict[str, Any] = {
        "model": config.model.name,
        "device": str(result.device),
        "batching": result.batching,
        "processes": config.optim.processes,
        "resumed_from_epoch": result.resumed_from_epoch,
        "best_epoch": result.best_epoch,
        "last_epoch": result.last_epoch,
        "stopped_at_cap": result.stopped_at_cap,
        "stopped_at_budget": result.stopped_at_budget,
        "select_metric": config.eval.select_metric,
        "val": evaluate_fit(result, "val"),
        "test": evaluate_fit(result, "test"),
        "history": result.history,
        "train_seconds": result.train_seconds,
        "counts": {
            "users": split.n_users,
            "items": split.n_items,
            "queries": split.n_queries,
            "train": len(split.train),
            "val": len(split.val),
            "test": len(split.test),
        },
    }
    if result.policy is not None:
        metrics["policy"] = {
            "alpha": result.policy.alpha,
            "scale": result.policy.policy.scale,
            "val_by_alpha": result.policy.val_by_alpha,
            "final": result.policy.history[-1] if result.policy.history else {},
        }
    metrics["total_seconds"] = time.perf_counter() - start
    write_model_dir(result, Path(out_dir), metrics)
    if checkpoint_dir is not None:
        Checkpointer(checkpoint_dir, config, fingerprint(split)).remove()
    logger.info(
        "trained %s in %.1fs: val auc %.4f, test auc %.4f -> %s",
        config.model.name,
        metrics["total_seconds"],
        metrics["val"].get("auc", float("nan")),
        metrics["test"].get("auc", float("nan")),
        out_dir,
    )
    return _jsonable(metrics)
