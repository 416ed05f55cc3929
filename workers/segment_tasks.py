"""Market segments of a freshly written model version, as a pipeline step.

``compute_segments`` runs between ``write_back`` and ``activate``: the version is complete but
not yet active, and its segments exist by the time it is served. It is idempotent like the other
steps: a version whose segments are complete (``(:Model).segments`` set) is skipped, and a
half-written attempt is removed and redone.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from neo4j import Driver

from graphstore import segments
from graphstore.driver import execute
from training.segments import SegmentConfig, cluster_users, neighbourhood_vectors
from workers import runs
from workers.app import app
from workers.context import RETRY, claim_or_skip, database, driver, paths

logger = logging.getLogger(__name__)


def segment_version(
    driver: Driver,
    version: str,
    embeddings: tuple[Sequence[str], np.ndarray] | None = None,
    config: SegmentConfig | None = None,
    *,
    min_count: int = 3,
    force: bool = False,
    database: str = "neo4j",
) -> segments.SegmentSummary:
    """Segment the users of a complete model version and write the segments.

    ``embeddings`` is ``(user ids, [U, D] vectors)``; without it they are read from the
    version's slot in the graph. Each user is clustered with its neighbourhood (the version's
    item embeddings of what it clicked, rated or bought, read from the graph) when the version
    has item embeddings (see :mod:`training.segments`). The segments are written as
    ``:ArchivedSegment`` and become ``:Segment`` when complete if the version is active (else
    when it is activated). A version whose segments are complete is skipped (``force``
    recomputes)."""
    record = segments.complete_model(driver, version, database)
    if record.get("segments") is not None and not force:
        logger.info("model %s already has %s segments, skipping", version, record["segments"])
        return segments.SegmentSummary(
            version=version,
            k=int(record["segments"]),
            criterion=str(record.get("segment_criterion") or ""),
            silhouette=record.get("segment_silhouette"),
            skipped=True,
            segments=segments.list_segments(driver, version, database),
        )
    pruned = segments.prune_segments(driver, database)
    if pruned:
        logger.info("removed %d segments of superseded or deleted versions", pruned)
    segments.delete_segments(driver, version, database)  # a half-written earlier attempt
    ids, vectors = (
        embeddings
        if embeddings is not None
        else segments.read_user_vectors(driver, version, database)
    )
    if len(ids) != len(vectors):
        raise segments.SegmentStoreError(f"{len(ids)} user ids but {len(vectors)} embeddings")
    user_ids = list(map(str, ids))
    found = segments.read_neighbourhood(driver, version, user_ids, database)
    neighbourhood = (
        neighbourhood_vectors(
            len(user_ids), found.item_vectors, found.user_index, found.item_index, found.weights
        )
        if found is not None and len(found.user_index)
        else None
    )
    seg = cluster_users(vectors, config, neighbourhood)
    segments.write_segmentation(
        driver, version, user_ids, seg.labels, seg.scores, seg.k, database=database
    )
    profiles = segments.profile_segments(driver, version, min_count=min_count, database=database)
    execute(
        driver,
        "segments/mark_model_segmented",
        {
            "version": version,
            "k": seg.k,
            "criterion": seg.criterion,
            "silhouette": seg.silhouette,
            "segmented_at": time.time(),
        },
        database=database,
    )
    logger.info(
        "model %s: %d segments written (%s%s)",
        version,
        seg.k,
        seg.criterion,
        ", with neighbourhoods" if seg.neighbourhood else "",
    )
    return segments.SegmentSummary(
        version=version,
        k=seg.k,
        criterion=seg.criterion,
        silhouette=seg.silhouette,
        segments=profiles,
        silhouette_by_k=seg.silhouette_by_k,
        eigengap_by_k=seg.eigengap_by_k,
        neighbourhood=seg.neighbourhood,
    )


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
    it is chosen by the eigengap criterion over ``[k_min, k_max]``. Returns ``run_id`` for the
    chain."""
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
    summary = segment_version(
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
