"""The training pipeline as a chain of thin, idempotent tasks.

``export_graph → train_model → write_back → activate``. Each task takes the run id (which is
also the model version) and works on files under ``<artifacts>/runs/<run_id>/``; a step whose
output already exists is skipped, so a redelivered or re-run task never does work twice and
never activates a half-written version.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

from celery import chain
from neo4j import Driver

from graphstore import export, model, writeback
from graphstore.driver import connect
from graphstore.errors import GraphUnavailableError
from workers import runs
from workers.app import app

logger = logging.getLogger(__name__)

RETRY = {
    "autoretry_for": (GraphUnavailableError,),
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 12,
}


@lru_cache(maxsize=1)
def driver() -> Driver:
    from dpgcn.services import neo4j_connection
    from dpgcn.settings import get_settings

    conn = neo4j_connection(get_settings())
    return connect(conn.uri, conn.user, conn.password)


def database() -> str:
    from dpgcn.settings import get_settings

    return get_settings().neo4j.database


def paths(run_id: str) -> dict[str, Path]:
    root = runs.run_dir(run_id)
    return {"root": root, "export": root / "export", "model": root / "model"}


@app.task(bind=True, **RETRY)  # type: ignore[untyped-decorator]
def export_graph(self: Any, run_id: str) -> str:
    out = paths(run_id)["export"]
    if (out / "meta.json").exists():
        logger.info("run %s: export exists, skipping", run_id)
        return str(out)
    runs.step_started(run_id, "export")
    summary = export.export_subgraph(driver(), out, database=database())
    runs.step_finished(run_id, "export", export_edges=summary["edges"])
    return str(out)


@app.task(bind=True)  # type: ignore[untyped-decorator]
def train_model(self: Any, _previous: Any, run_id: str, config: dict[str, Any]) -> str:
    from training.config import TrainConfig
    from training.train import train_from_export

    p = paths(run_id)
    if (p["model"] / "metrics.json").exists():
        logger.info("run %s: model exists, skipping training", run_id)
        return str(p["model"])
    runs.step_started(run_id, "train")

    def progress(info: dict[str, Any]) -> None:
        runs.update(run_id, progress=info)
        self.update_state(state="PROGRESS", meta={"run_id": run_id, **info})

    cfg = TrainConfig.from_json(json.dumps(config)) if config else TrainConfig()
    metrics = train_from_export(p["export"], p["model"], cfg, progress=progress)
    runs.step_finished(run_id, "train", metrics=_summary(metrics))
    return str(p["model"])


def _summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """Scalars plus the validation/test metrics flattened as ``val_auc``, ``test_ndcg@5``…
    (the per-epoch history stays in metrics.json)."""
    out = {k: v for k, v in metrics.items() if isinstance(v, int | float | str)}
    for split in ("val", "test"):
        for name, value in (metrics.get(split) or {}).items():
            if isinstance(value, int | float):
                out[f"{split}_{name}"] = value
    return out


@app.task(bind=True, **RETRY)  # type: ignore[untyped-decorator]
def write_back(self: Any, _previous: Any, run_id: str) -> str:
    import numpy as np

    p = paths(run_id)
    db = database()
    existing = writeback.get_model(driver(), run_id, db)
    if existing and existing.get("status") in ("complete", "superseded"):
        logger.info("run %s: version already written, skipping", run_id)
        return run_id
    runs.step_started(run_id, "write_back")
    metrics = json.loads((p["model"] / "metrics.json").read_text())
    config = json.loads((p["model"] / "train_config.json").read_text())
    with np.load(p["model"] / "embeddings.npz", allow_pickle=False) as emb:
        labels = [lb for lb in model.EMBEDDED_LABELS if f"{lb}.embedding" in emb]
        dim = int(emb[f"{labels[0]}.embedding"].shape[1])
        writeback.begin_version(
            driver(), run_id, dim, str(config.get("model", "dpgcn")), run_id=run_id, database=db
        )
        counts = {}
        for label in labels:
            counts[label] = writeback.write_embeddings(
                driver(),
                run_id,
                label,
                emb[f"{label}.ids"],
                emb[f"{label}.embedding"],
                database=db,
            )
    writeback.complete_version(driver(), run_id, counts, _summary(metrics), db)
    runs.step_finished(run_id, "write_back", written=counts)
    return run_id


@app.task(bind=True, **RETRY)  # type: ignore[untyped-decorator]
def activate(self: Any, _previous: Any, run_id: str) -> str:
    runs.step_started(run_id, "activate")
    active = writeback.activate_version(driver(), run_id, database())
    runs.step_finished(run_id, "activate", state="SUCCESS", step="done")
    return active.version


@app.task  # type: ignore[untyped-decorator]
def mark_failed(request: Any, exc: Any, traceback: Any, run_id: str) -> None:
    """Errback of the chain (Celery calls it with the failed request, exception, traceback)."""
    runs.update(run_id, state="FAILURE", error=str(exc)[:2000])


def pipeline_signature(run_id: str, config: dict[str, Any]) -> Any:
    return chain(
        export_graph.si(run_id),
        train_model.s(run_id, config),
        write_back.s(run_id),
        activate.s(run_id),
    ).on_error(mark_failed.s(run_id=run_id))


@app.task  # type: ignore[untyped-decorator]
def start_pipeline(config: dict[str, Any] | None = None) -> str:
    """Beat's entry point (and the API's): a new run of the whole chain."""
    run_id = runs.new_run_id()
    submit_pipeline(run_id, config or {})
    return run_id


def submit_pipeline(run_id: str, config: dict[str, Any]) -> Any:
    runs.create(run_id, config)
    result = pipeline_signature(run_id, config).apply_async()
    runs.update(run_id, task_id=result.id)
    return result
