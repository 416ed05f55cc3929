"""Run-level crash recovery: worker heartbeats, step ownership, and resuming orphaned runs.

With Redis as the broker, the message of a task whose worker was killed (``SIGKILL``, OOM,
lost machine) stays unacknowledged until the visibility timeout (12 h) runs out. Waiting that
long is not acceptable for a pipeline run, so recovery works on runs instead of messages:

* every worker process has a unique id (:data:`workers.context.WORKER_ID`) and refreshes a
  heartbeat key ``dpgcn:worker:<id>`` (expires after ``DPGCN_WORKER_HEARTBEAT_TTL_S``);
* a pipeline task claims its step in the run record (``owner``) for the run's current
  ``attempt`` before doing any work and releases it after it finished and the next task of
  the chain is queued. The claim comes with a lease (``dpgcn:lease:<run_id>``, same TTL as a
  heartbeat) that a thread of the task's own process renews while the claim is held
  (:mod:`workers.context`);
* on start (``worker_ready``) and every ``DPGCN_RECOVER_EVERY_S``, each worker looks for runs
  in progress whose owner's heartbeat is gone, or whose step's lease is gone while the owner
  lives (its task died but the worker did not: an exception whose failure could not be
  recorded, a killed pool child). A run must look orphaned on two scans at least two
  heartbeats apart (after a Redis restart every key with a TTL may be gone until the workers'
  next beat). Under a Redis lock it bumps the run's ``attempt`` and submits the chain again:
  steps are idempotent, so finished steps are skipped and the run continues from the step
  that was interrupted. After :data:`MAX_RECOVERIES` resumptions a run is marked FAILURE.
  The same thread drains the event outbox (:mod:`workers.outbox`);
* the original message, redelivered much later, carries the old attempt: its claim answers
  ``stale`` and the task (and the rest of its chain) does nothing. So does a redelivery after
  the run finished (``finished``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import Any, cast

from celery.signals import worker_ready, worker_shutdown

from dpgcn.settings import get_settings
from workers import outbox, pipeline, runs
from workers.context import WORKER_ID, hostname, set_hostname

logger = logging.getLogger(__name__)

HEARTBEAT_PREFIX = "dpgcn:worker:"
RECOVER_LOCK_PREFIX = "dpgcn:recover:"
#: States of runs that may be orphaned.
LIVE_STATES = frozenset({"QUEUED", "RUNNING", "RETRYING"})
#: A run resumed this often is failed instead of resumed again (a step that keeps dying).
MAX_RECOVERIES = 5

_stop = threading.Event()
_thread: threading.Thread | None = None
#: Runs seen orphaned by this worker's scans: run id → when first seen (monotonic seconds).
_suspects: dict[str, float] = {}


def heartbeat_key(worker_id: str) -> str:
    return HEARTBEAT_PREFIX + worker_id


def beat_once(info: dict[str, Any] | None = None) -> None:
    ttl_ms = int(get_settings().worker_heartbeat_ttl_s * 1000)
    payload = json.dumps(
        {"hostname": hostname(), "pid": os.getpid(), "at": time.time(), **(info or {})}
    )
    runs.client().set(heartbeat_key(WORKER_ID), payload, px=ttl_ms)


def is_alive(worker_id: str) -> bool:
    return bool(runs.client().exists(heartbeat_key(worker_id)))


def orphan_reason(record: dict[str, Any]) -> str | None:
    """Why a run record is orphaned (``"worker gone"``, ``"task gone"``), or None."""
    owner = str(record.get("owner", ""))
    if record.get("state") not in LIVE_STATES or not owner:
        return None
    if not is_alive(owner):
        return "worker gone"
    if not runs.has_lease(str(record["run_id"])):
        return "task gone"
    return None


def orphaned_runs(limit: int = 200) -> list[str]:
    """Runs in progress whose owning worker has no heartbeat, or whose step's task has no
    lease, any more."""
    out = []
    for run_id in runs.run_ids(limit):
        record = cast(dict[str, str], runs.client().hgetall(runs.run_key(run_id)))
        if record and orphan_reason({"run_id": run_id, **record}):
            out.append(run_id)
    return out


def resume_run(run_id: str) -> bool:
    """Resume an orphaned run under a new attempt; ``False`` when another worker holds the
    recovery lock or the run is no longer orphaned."""
    client = runs.client()
    lock = RECOVER_LOCK_PREFIX + run_id
    if not client.set(lock, WORKER_ID, nx=True, ex=120):
        return False
    try:
        record = runs.get(run_id) or {}
        reason = orphan_reason(record) if record else None
        if reason is None:
            return False
        owner = str(record.get("owner", ""))
        if int(record.get("recoveries", 0)) >= MAX_RECOVERIES:
            logger.error("run %s: resumed %d times already; failed", run_id, MAX_RECOVERIES)
            runs.update(
                run_id,
                state="FAILURE",
                owner="",
                error=f"{reason} in step {record.get('owner_step')} after "
                f"{MAX_RECOVERIES} resumptions",
            )
            return False
        attempt = runs.increment(run_id, "attempt")
        runs.increment(run_id, "recoveries")
        runs.update(
            run_id,
            owner="",
            recovered_at=time.time(),
            recovered_from=f"{record.get('owner_step', '')}@{owner}",
            recovered_because=reason,
        )
        logger.warning(
            "run %s: %s (owner %s, step %s); resuming as attempt %d",
            run_id,
            reason,
            owner,
            record.get("owner_step"),
            attempt,
        )
        pipeline.resubmit(run_id, record.get("config") or {}, attempt)
        return True
    finally:
        if client.get(lock) == WORKER_ID:
            client.delete(lock)


def recover_orphans(confirm_after_s: float | None = None) -> list[str]:
    """Resume every orphaned run this worker can lock; returns their ids. A run is resumed
    once it has looked orphaned for ``confirm_after_s`` (default: two heartbeat periods)."""
    if confirm_after_s is None:
        confirm_after_s = 2 * get_settings().worker_heartbeat_s
    now = time.monotonic()
    found = orphaned_runs()
    for gone in set(_suspects) - set(found):
        del _suspects[gone]
    resumed = []
    for run_id in found:
        first = _suspects.setdefault(run_id, now)
        if now - first < confirm_after_s:
            continue
        _suspects.pop(run_id, None)
        try:
            if resume_run(run_id):
                resumed.append(run_id)
        except Exception:
            logger.exception("run %s: recovery failed", run_id)
    return resumed


def _loop() -> None:
    settings = get_settings()
    last_recover = 0.0
    while not _stop.is_set():
        try:
            beat_once()
            if time.monotonic() - last_recover >= settings.recover_every_s:
                last_recover = time.monotonic()
                recover_orphans()
                _drain_outbox()
        except Exception as e:  # Redis down: keep trying, the worker itself reconnects
            logger.warning("heartbeat/recovery: %s", e)
        _stop.wait(settings.worker_heartbeat_s)


def _drain_outbox() -> None:
    """Append the events the API could not stream (workers.outbox); errors are logged."""
    try:
        outbox.drain_once(WORKER_ID)
    except Exception as e:  # Neo4j or Redis down: the next round tries again
        logger.warning("outbox drain: %s", e)


def start() -> None:
    """Start the heartbeat/recovery thread of this worker (idempotent)."""
    global _thread
    if _thread is not None and _thread.is_alive():
        return
    _stop.clear()
    beat_once()
    _thread = threading.Thread(target=_loop, name="dpgcn-heartbeat", daemon=True)
    _thread.start()
    logger.info("worker %s: heartbeat started", WORKER_ID)


def stop() -> None:
    _stop.set()
    try:
        runs.client().delete(heartbeat_key(WORKER_ID))
    except Exception as e:
        logger.warning("could not remove heartbeat: %s", e)


@worker_ready.connect(weak=False)
def _on_ready(sender: Any = None, **_: Any) -> None:
    if sender is not None and getattr(sender, "hostname", None):
        set_hostname(str(sender.hostname))
    start()


@worker_shutdown.connect(weak=False)
def _on_shutdown(**_: Any) -> None:
    stop()
    runs.close_default_registry()
