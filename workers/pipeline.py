"""The training pipeline: its steps as thin, idempotent tasks, and the chain that links them.

``export_graph → train_model → write_back → compute_segments → activate``. Each task takes the
run id (which is also the model version) and works on files under ``<artifacts>/runs/<run_id>/``;
a step whose output already exists is skipped, so a redelivered or re-run task never does work
twice and never activates a half-written version.

Every task also takes the run's ``attempt`` and first claims its step in the run record
(:func:`workers.context.claim_or_skip`): a run whose worker died is resumed under a new attempt
(:mod:`workers.recovery` calls :func:`resubmit`), and the messages of the old attempt
(redelivered after the visibility timeout) then do nothing.

Imports run one way: this module uses :mod:`workers.context` (driver, paths, retry policy,
claims) and the segments step of :mod:`workers.segment_tasks`; of the worker modules only
:mod:`workers.recovery` imports it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from celery import chain

from graphstore import export, model, policies, writeback
from workers import runs
from workers.app import app
from workers.context import RETRY, claim_or_skip, database, driver, paths
from workers.segment_tasks import compute_segments

if TYPE_CHECKING:
    from training.config import TrainConfig

logger = logging.getLogger(__name__)

#: A write-back finding another run writing a slot retries every SLOT_WAIT_S, this often.
SLOT_WAIT_S = 3.0
SLOT_WAIT_RETRIES = 1200


#: The device this worker process trains on (``dpgcn worker --device``); ``None`` or
#: ``"auto"``: the run's TrainConfig decides (by default CUDA when present).
_worker_device: str | None = None


def set_worker_device(name: str | None) -> None:
    """Train on ``name`` (``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"auto"``) in this process and
    the pool processes it forks (``dpgcn worker --device`` calls it before starting)."""
    global _worker_device
    _worker_device = name


def train_config(config: dict[str, Any]) -> TrainConfig:
    """The run's TrainConfig from the message's changes (dotted paths; a message queued before
    TrainConfig had sections holds the old flat names, read the same way), on this worker's
    device when the worker names one."""
    from training.config import TrainConfig

    cfg = TrainConfig.from_dict(config)
    if _worker_device not in (None, "auto"):
        cfg = cfg.replace({"device": _worker_device})
    return cfg


@app.task(bind=True, **RETRY)  # type: ignore[untyped-decorator]
def export_graph(self: Any, run_id: str, attempt: int = 0) -> str:
    out = paths(run_id)["export"]
    if not claim_or_skip(self, run_id, "export", attempt):
        return str(out)
    if (out / "meta.json").exists():
        logger.info("run %s: export exists, skipping", run_id)
        return str(out)
    runs.step_started(run_id, "export")
    summary = export.export_subgraph(driver(), out, database=database())
    runs.step_finished(run_id, "export", export_edges=summary["edges"])
    return str(out)


@app.task(bind=True)  # type: ignore[untyped-decorator]
def train_model(
    self: Any, _previous: Any, run_id: str, config: dict[str, Any], attempt: int = 0
) -> str:
    from training.train import train_from_export

    p = paths(run_id)
    if not claim_or_skip(self, run_id, "train", attempt):
        return str(p["model"])
    if (p["model"] / "metrics.json").exists():
        logger.info("run %s: model exists, skipping training", run_id)
        return str(p["model"])
    runs.step_started(run_id, "train")

    def progress(info: dict[str, Any]) -> None:
        # best effort: a Redis outage delays the record, never the training
        if runs.report_progress(run_id, info):
            try:
                self.update_state(state="PROGRESS", meta={"run_id": run_id, **info})
            except Exception as e:
                logger.warning("run %s: task progress not stored (%s)", run_id, e)

    metrics = train_from_export(
        p["export"],
        p["model"],
        train_config(config),
        progress=progress,
        checkpoint_dir=p["checkpoint"],
    )
    runs.step_finished(run_id, "train", metrics=_summary(metrics))
    return str(p["model"])


def _summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """Scalars plus the validation/test metrics flattened as ``val_auc``, ``test_ndcg@5``…
    (the per-epoch history stays in metrics.json), and the DDPG weight α that validation chose
    as ``policy_alpha`` (0: the version's policy is off)."""
    out = {k: v for k, v in metrics.items() if isinstance(v, int | float | str)}
    for split in ("val", "test"):
        for name, value in (metrics.get(split) or {}).items():
            if isinstance(value, int | float):
                out[f"{split}_{name}"] = value
    policy = metrics.get("policy")
    if isinstance(policy, dict) and isinstance(policy.get("alpha"), int | float):
        out["policy_alpha"] = float(policy["alpha"])
    return out


@app.task(bind=True, **RETRY)  # type: ignore[untyped-decorator]
def write_back(self: Any, _previous: Any, run_id: str, attempt: int = 0) -> str:
    import numpy as np

    p = paths(run_id)
    if not claim_or_skip(self, run_id, "write_back", attempt):
        return run_id
    holder = runs.acquire_slot(run_id)
    if holder is not None:  # another run is writing or activating a version: wait for it
        logger.info("run %s: run %s is writing a slot; write-back waits", run_id, holder)
        runs.update(run_id, waiting_for=holder)
        raise self.retry(countdown=SLOT_WAIT_S, max_retries=SLOT_WAIT_RETRIES)
    db = database()
    existing = writeback.get_model(driver(), run_id, db)
    if existing and existing.get("status") in ("complete", "superseded"):
        logger.info("run %s: version already written, skipping", run_id)
        _save_trained_policy(run_id, p["model"], db)
        return run_id
    runs.step_started(run_id, "write_back")
    metrics = json.loads((p["model"] / "metrics.json").read_text())
    from training.config import TrainConfig

    config = TrainConfig.from_json((p["model"] / "train_config.json").read_text())
    with np.load(p["model"] / "embeddings.npz", allow_pickle=False) as emb:
        labels = [lb for lb in model.EMBEDDED_LABELS if f"{lb}.embedding" in emb]
        dim = int(emb[f"{labels[0]}.embedding"].shape[1])
        writeback.begin_version(
            driver(), run_id, dim, config.model.name, run_id=run_id, database=db
        )
        from dpgcn.settings import get_settings

        vector = get_settings().vector_index
        index_options = writeback.IndexOptions(
            m=vector.hnsw_m,
            ef_construction=vector.hnsw_ef_construction,
            quantization=vector.quantization,
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
                index_options=index_options,
            )
    writeback.complete_version(driver(), run_id, counts, _summary(metrics), db)
    _save_trained_policy(run_id, p["model"], db)
    runs.step_finished(run_id, "write_back", written=counts)
    return run_id


def _save_trained_policy(run_id: str, model_dir: Path, db: str) -> None:
    """The trained ``policy.pt`` becomes policy version 1 of the model version (once), stored
    without its per-user history rows."""
    from training.privacy import policy_without_history

    path = model_dir / "policy.pt"
    if not path.is_file() or policies.get_latest_policy(driver(), run_id, db) is not None:
        return
    version = policies.save_policy(
        driver(),
        run_id,
        policy_without_history(path.read_bytes()),
        {"source": "offline", "updates": 0},
        db,
    )
    logger.info("run %s: trained policy saved as policy version %d", run_id, version)


@app.task(bind=True, **RETRY)  # type: ignore[untyped-decorator]
def activate(self: Any, _previous: Any, run_id: str, attempt: int = 0) -> str:
    if not claim_or_skip(self, run_id, "activate", attempt):
        return run_id
    runs.step_started(run_id, "activate")
    active = writeback.activate_version(driver(), run_id, database())
    runs.step_finished(run_id, "activate", state="SUCCESS", step="done")
    runs.release_slot(run_id)
    return active.version


@app.task  # type: ignore[untyped-decorator]
def mark_failed(request: Any, exc: Any, traceback: Any, run_id: str) -> None:
    """Errback of the chain (Celery calls it with the failed request, exception, traceback)."""
    runs.update(run_id, state="FAILURE", error=str(exc)[:2000])
    runs.release_slot(run_id)


def pipeline_signature(run_id: str, config: dict[str, Any], attempt: int = 0) -> Any:
    """The run's chain of steps under ``attempt``, failing into :func:`mark_failed`."""
    return chain(
        export_graph.si(run_id, attempt=attempt),
        train_model.s(run_id, config, attempt=attempt),
        write_back.s(run_id, attempt=attempt),
        compute_segments.s(run_id, attempt=attempt),
        activate.s(run_id, attempt=attempt),
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


def resubmit(run_id: str, config: dict[str, Any], attempt: int) -> Any:
    """Queue the chain of an existing run again under ``attempt`` (crash recovery)."""
    result = pipeline_signature(run_id, config, attempt).apply_async()
    runs.update(run_id, task_id=result.id)
    return result
