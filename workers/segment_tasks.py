"""Market segments of a freshly written model version, as a pipeline step.

``compute_segments`` runs between ``write_back`` and ``activate``: the version is complete but
not yet active, and its segments exist by the time it is served. It is idempotent like the other
steps: a version whose segments are complete (``(:Model).segments`` set) is skipped, and a
half-written attempt is removed and redone.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from graphstore import segments
from training.segments import SegmentConfig
from workers import runs
from workers.app import app
from workers.pipeline import RETRY, claim_or_skip, database, driver, paths

logger = logging.getLogger(__name__)


def read_run_embeddings(model_dir: Path) -> tuple[list[str], np.ndarray] | None:
    """The run's user embeddings from ``embeddings.npz``, or None when the file is missing."""
    path = model_dir / "embeddings.npz"
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as emb:
        if "User.embedding" not in emb:
            return None
        return [str(u) for u in emb["User.ids"]], np.asarray(emb["User.embedding"])


@app.task(bind=True, **RETRY)  # type: ignore[untyped-decorator]
def compute_segments(
    self: Any,
    _previous: Any,
    run_id: str,
    k: int | None = None,
    k_min: int = 2,
    k_max: int = 10,
    attempt: int = 0,
) -> str:
    """Segment the users of version ``run_id``; ``k`` fixes the number of segments, otherwise
    it is chosen by silhouette over ``[k_min, k_max]``. Returns ``run_id`` for the chain."""
    from graphstore.writeback import get_model

    if not claim_or_skip(self, run_id, "segments", attempt):
        return run_id
    db = database()
    record = get_model(driver(), run_id, db)
    if record is not None and record.get("segments") is not None:
        logger.info("run %s: segments exist, skipping", run_id)
        return run_id
    runs.step_started(run_id, "segments")
    embeddings = read_run_embeddings(paths(run_id)["model"])
    summary = segments.compute_segments(
        driver(),
        run_id,
        embeddings,
        SegmentConfig(k=k, k_min=k_min, k_max=k_max),
        database=db,
    )
    runs.step_finished(
        run_id,
        "segments",
        segments={"k": summary.k, "criterion": summary.criterion, "silhouette": summary.silhouette},
    )
    return run_id
