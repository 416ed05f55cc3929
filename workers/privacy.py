"""Erased users leave the training artifacts too.

``DELETE /v1/users/{id}`` (``graphstore.users.delete_user``) erases the user from the graph
and leaves a tombstone holding a salted hash of the id. Past runs' files on disk
(``<artifacts>/runs/<run_id>/``: export, embeddings, features, model, policy, online state)
still hold the user's rows; beat runs :func:`scrub_erased_artifacts` every
``DPGCN_PRIVACY_SCRUB_EVERY_S`` seconds (and ``dpgcn privacy scrub`` runs it at once), which
rewrites every run directory holding an erased user with :func:`training.privacy.scrub_run`.

A run directory records what it was checked against in ``.erasures.json`` (the number of
tombstones and the newest erasure time), so directories are re-read only after new
erasures. A run still being written is scrubbed on the next round after its files appear.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from neo4j import Driver

from dpgcn.settings import get_settings
from graphstore.erasures import Erasures, get_erasures
from workers import context, runs
from workers.app import app

logger = logging.getLogger(__name__)

MARKER = ".erasures.json"
LOCK_KEY = "dpgcn:lock:privacy-scrub"
LOCK_TTL_S = 1800


def _checked(run_dir: Path, erasures: Erasures) -> bool:
    try:
        seen = json.loads((run_dir / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return bool(
        seen.get("tombstones") == len(erasures.hashes) and seen.get("latest") == erasures.latest
    )


def scrub_artifacts(driver: Driver, artifacts: Path, database: str = "neo4j") -> dict[str, Any]:
    """Scrub every run directory under ``artifacts/runs`` (no Celery: the task, the CLI and
    tests call it). Returns counts: runs checked, runs and users scrubbed."""
    from training.privacy import scrub_run

    erasures = get_erasures(driver, database)
    summary = {"tombstones": len(erasures.hashes), "runs": 0, "scrubbed_runs": 0, "users": 0}
    runs_dir = Path(artifacts) / "runs"
    if not erasures.hashes or not runs_dir.is_dir():
        return summary
    for run_dir in sorted(p for p in runs_dir.iterdir() if p.is_dir()):
        if _checked(run_dir, erasures):
            continue
        summary["runs"] += 1
        report = scrub_run(run_dir, erasures.__contains__)
        if report.users:
            summary["scrubbed_runs"] += 1
            summary["users"] += report.users
        marker = {"tombstones": len(erasures.hashes), "latest": erasures.latest}
        (run_dir / MARKER).write_text(json.dumps(marker))
    logger.info("privacy scrub: %s", summary)
    return summary


@app.task  # type: ignore[untyped-decorator]
def scrub_erased_artifacts() -> dict[str, Any]:
    """One scrub round, under a Redis lock so that two workers never rewrite the same files."""
    client = runs.client()
    if not client.set(LOCK_KEY, context.WORKER_ID, nx=True, ex=LOCK_TTL_S):
        return {"skipped": "another scrub is running"}
    try:
        return scrub_artifacts(context.driver(), get_settings().artifacts_dir, context.database())
    finally:
        if client.get(LOCK_KEY) == context.WORKER_ID:
            client.delete(LOCK_KEY)
