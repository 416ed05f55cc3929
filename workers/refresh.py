"""Vectors of the active model version for nodes created after it was trained, without training.

Beat runs :func:`refresh_vectors` every ``DPGCN_REFRESH_EVERY_S`` (and anyone may queue it, e.g.
after a load). One round (:func:`run_refresh`):

1. reads the active version; none: nothing to do;
2. asks the graph for the users (with consent), items and queries without a vector of that
   version in its slot; none: nothing to do (this check is all an idle round costs);
3. skips, with one log line, a model that cannot score nodes it was not trained on (only
   inductive models — DP-GCN — save ``node_keys.npz`` with their model directory);
4. exports the current graph and computes the new nodes' vectors with the active model
   (:func:`training.refresh.encode_nodes`: trained weights moved onto the new export, eval mode,
   no gradient step);
5. writes them into the active version's slot, tagged with its version, under the slot-writer
   lock (:meth:`workers.runs.RunRegistry.acquire_slot`), after checking the version is still
   the active one, and sets ``refreshed_at`` (epoch ms) on its ``(:Model)`` node: the API
   reloads its item index when that changes; ``similar items`` reads the slot's vector index,
   which has them at once.

Idempotent: a node that has its vector is not asked for again, so a repeated or redelivered
round writes nothing twice. Safe beside training: training reads an export of its own; a run
that is writing or activating another version holds the slot-writer lock, and a refresh that
finds it held waits for it (retried) without exporting anything; while a refresh writes, it
holds that lock itself, so no version is begun or activated in the middle of its write. One
refresh runs at a time (a Redis lock). The bound from load to servable: ``docs/inductive.md``.
"""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from typing import Any

from neo4j import Driver

from graphstore import export, model, writeback
from graphstore.errors import GraphUnavailableError
from workers import context, runs
from workers.app import app

logger = logging.getLogger(__name__)

LOCK_KEY = "dpgcn:lock:refresh"
LOCK_TTL_S = 1800
#: A refresh holds the slot-writer lock as a pseudo-run whose record expires after this long,
#: so a refresh whose worker died never blocks write-backs for longer.
SLOT_LEASE_S = 600
#: A refresh finding a run writing a slot retries every SLOT_WAIT_S, this often.
SLOT_WAIT_S = 5.0
SLOT_WAIT_RETRIES = 720
#: Ids the export did not have (checked again only after this long, per version).
MISSING_TTL_S = 24 * 3600
#: A version whose model could not be rebuilt on the current graph is not tried again (a full
#: export each round) for this long.
BLOCKED_TTL_S = 3600


def missing_key(version: str) -> str:
    """Redis set of ``label:id`` a refresh of ``version`` asked for but the export lacked, so
    that the next rounds do not export the graph again for them."""
    return f"dpgcn:refresh:{version}:not-exported"


def blocked_key(version: str) -> str:
    """Redis string: why the model of ``version`` could not encode the current graph."""
    return f"dpgcn:refresh:{version}:blocked"


def find_new_nodes(
    driver: Driver, version: str, client: Any, database: str = "neo4j"
) -> dict[str, list[str]]:
    """Per served label, the ids of the nodes without a vector of ``version`` (minus those a
    previous round found missing from the export)."""
    skip = set(client.smembers(missing_key(version)) or ())
    out: dict[str, list[str]] = {}
    for label in model.EMBEDDED_LABELS:
        ids = [
            i
            for i in writeback.get_unembedded_ids(driver, version, label, database)
            if f"{label}:{i}" not in skip
        ]
        if ids:
            out[label] = ids
    return out


def run_refresh(driver: Driver, client: Any, database: str = "neo4j") -> dict[str, Any]:
    """One refresh round (no Celery: the task below and tests call it). Returns what it did:
    ``skipped`` (why nothing was done), ``waiting_for`` (the run holding the slot-writer lock;
    call again later) or ``written`` (vectors per label) with ``refreshed_at``."""
    from training.errors import TrainingError
    from training.refresh import encode_nodes, refresh_blocker

    started = time.perf_counter()
    active = writeback.get_active(driver, database)
    if active is None:
        return {"skipped": "no active model"}
    version = active.version
    blocked = client.get(blocked_key(version))
    if blocked:
        return {"skipped": f"{blocked} (not retried for {BLOCKED_TTL_S} s)"}
    wanted = find_new_nodes(driver, version, client, database)
    if not wanted:
        return {"skipped": "no new nodes", "model_version": version}
    model_dir = runs.run_dir(active.run_id or version) / "model"
    blocker = refresh_blocker(model_dir)
    if blocker is not None:
        logger.info(
            "refresh of %s skipped for %s new node(s): %s",
            version,
            sum(map(len, wanted.values())),
            blocker,
        )
        return {"skipped": blocker, "model_version": version}
    holder = runs.slot_holder()
    if holder is not None and _live(client, holder):
        return {"waiting_for": holder, "model_version": version}
    work = runs.run_dir(version) / "refresh" / uuid.uuid4().hex[:8]
    try:
        summary = export.export_subgraph(driver, work / "export", database=database)
        try:
            vectors = encode_nodes(model_dir, work / "export", wanted)
        except TrainingError as e:
            logger.warning("refresh of %s skipped: %s", version, e)
            client.set(blocked_key(version), str(e)[:2000], ex=BLOCKED_TTL_S)
            return {"skipped": str(e), "model_version": version}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    absent = [
        f"{label}:{i}"
        for label, ids in wanted.items()
        for i in sorted(set(ids) - set(vectors[label].ids.tolist() if label in vectors else ()))
    ]
    if absent:  # deleted since, or not exported: not asked for again for a while
        client.sadd(missing_key(version), *absent)
        client.expire(missing_key(version), MISSING_TTL_S)
    result = _write(driver, client, version, vectors, database)
    result.update(
        model_version=version,
        asked={label: len(ids) for label, ids in wanted.items()},
        not_exported=len(absent),
        export_seconds=round(float(summary.get("seconds", 0.0)), 3),
        seconds=round(time.perf_counter() - started, 3),
    )
    logger.info("refresh: %s", result)
    return result


def _live(client: Any, holder: str) -> bool:
    """Whether the slot-writer lock's holder is a run (or refresh) still in flight."""
    return client.hget(runs.run_key(holder), "state") not in (None, *runs.FINAL_STATES)


def _write(
    driver: Driver, client: Any, version: str, vectors: dict[str, Any], database: str
) -> dict[str, Any]:
    """Write the vectors into ``version``'s slot holding the slot-writer lock, if ``version``
    is still the active one."""
    if not vectors:
        return {"written": {}}
    me = f"refresh-{uuid.uuid4().hex[:12]}"
    key = runs.run_key(me)
    # acquire_slot takes over a lock whose holder's record is gone or final: this record,
    # expiring, makes the refresh a holder that write-backs wait for (never for long).
    client.hset(key, mapping={"state": "RUNNING", "kind": "refresh", "model_version": version})
    client.expire(key, SLOT_LEASE_S)
    try:
        holder = runs.acquire_slot(me)
        if holder is not None:
            return {"waiting_for": holder}
        try:
            active = writeback.get_active(driver, database)
            if active is None or active.version != version:
                return {"skipped": f"{version} is no longer the active version"}
            written = {
                label: writeback.write_node_vectors(
                    driver, version, label, nv.ids, nv.vectors, database=database
                )
                for label, nv in vectors.items()
            }
            refreshed_at = writeback.mark_refreshed(
                driver, version, sum(written.values()), database
            )
        finally:
            runs.release_slot(me)
    finally:
        client.delete(key)
    return {"written": written, "refreshed_at": refreshed_at}


@app.task(
    bind=True,
    autoretry_for=(GraphUnavailableError,),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=12,
)  # type: ignore[untyped-decorator]
def refresh_vectors(self: Any, wait: bool = True) -> dict[str, Any]:
    """Beat's periodic refresh (and one queued after a load). Skipped while another refresh
    runs. While a run holds the slot-writer lock: retried every :data:`SLOT_WAIT_S` if
    ``wait``, else left to the next round (beat's rounds do not wait, so they never pile up)."""
    client = runs.client()
    token = f"{context.WORKER_ID}:{uuid.uuid4().hex[:8]}"
    if not client.set(LOCK_KEY, token, nx=True, ex=LOCK_TTL_S):
        return {"skipped": "another refresh is running"}
    try:
        result = run_refresh(context.driver(), client, context.database())
    finally:
        if client.get(LOCK_KEY) == token:
            client.delete(LOCK_KEY)
    if "waiting_for" in result and wait:
        logger.info("refresh waits for run %s (slot-writer lock)", result["waiting_for"])
        raise self.retry(countdown=SLOT_WAIT_S, max_retries=SLOT_WAIT_RETRIES)
    return result
