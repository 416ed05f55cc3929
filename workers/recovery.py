"""Run-level crash recovery: worker heartbeats, step ownership, and resuming orphaned runs.

With Redis as the broker, the message of a task whose worker was killed (``SIGKILL``, OOM,
lost machine) stays unacknowledged until the visibility timeout (12 h) runs out. Waiting that
long is not acceptable for a pipeline run, so recovery works on runs instead of messages:

* every worker process has a unique id (:data:`WORKER_ID`) and refreshes a heartbeat key
  ``dpgcn:worker:<id>`` (expires after ``DPGCN_WORKER_HEARTBEAT_TTL_S``);
* a pipeline task claims its step in the run record (``owner``) for the run's current
  ``attempt`` before doing any work (:func:`workers.runs.claim`) and releases it after it
  finished and the next task of the chain is queued;
* on start (``worker_ready``) and every ``DPGCN_RECOVER_EVERY_S``, each worker looks for runs
  whose owner's heartbeat is gone. Under a Redis lock it bumps the run's ``attempt`` and
  submits the chain again: steps are idempotent, so finished steps are skipped and the run
  continues from the step that was interrupted;
* the original message, redelivered much later, carries the old attempt: its claim answers
  ``stale`` and the task (and the rest of its chain) does nothing. So does a redelivery after
  the run finished (``finished``).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any, cast

from celery.signals import task_postrun, worker_ready, worker_shutdown

from dpgcn.settings import get_settings
from workers import runs

logger = logging.getLogger(__name__)

#: This worker process's identity (forked pool children inherit it from the main process).
WORKER_ID = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
HEARTBEAT_PREFIX = "dpgcn:worker:"
RECOVER_LOCK_PREFIX = "dpgcn:recover:"
#: States of runs that may be orphaned.
LIVE_STATES = frozenset({"QUEUED", "RUNNING", "RETRYING"})

_stop = threading.Event()
_thread: threading.Thread | None = None
_hostname = socket.gethostname()
#: The claim held by the task running in this process: (run_id, attempt).
_current: dict[str, tuple[str, int]] = {}


def heartbeat_key(worker_id: str) -> str:
    return HEARTBEAT_PREFIX + worker_id


def beat_once(info: dict[str, Any] | None = None) -> None:
    ttl_ms = int(get_settings().worker_heartbeat_ttl_s * 1000)
    payload = json.dumps(
        {"hostname": _hostname, "pid": os.getpid(), "at": time.time(), **(info or {})}
    )
    runs.client().set(heartbeat_key(WORKER_ID), payload, px=ttl_ms)


def is_alive(worker_id: str) -> bool:
    return bool(runs.client().exists(heartbeat_key(worker_id)))


def claim_step(run_id: str, step: str, attempt: int, hostname: str | None = None) -> bool:
    """Claim ``step`` of ``run_id`` for this worker; ``False`` when the message is a late or
    stale delivery that must do nothing."""
    outcome = runs.claim(run_id, step, attempt, WORKER_ID, hostname or _hostname)
    if outcome != "claimed":
        logger.warning(
            "run %s: %s delivery of step %s (attempt %d) ignored", run_id, outcome, step, attempt
        )
        return False
    _current["claim"] = (run_id, attempt)
    return True


def current_claim() -> tuple[str, int] | None:
    """(run_id, attempt) of the step the task running in this process claimed."""
    return _current.get("claim")


def release_step() -> None:
    claim = _current.pop("claim", None)
    if claim is not None:
        runs.release(claim[0], claim[1], WORKER_ID)


def orphaned_runs(limit: int = 200) -> list[str]:
    """Runs in progress whose owning worker has no heartbeat any more."""
    out = []
    for run_id in runs.run_ids(limit):
        record = cast(dict[str, str], runs.client().hgetall(runs.run_key(run_id)))
        owner = record.get("owner", "")
        if record.get("state") in LIVE_STATES and owner and not is_alive(owner):
            out.append(run_id)
    return out


def resume_run(run_id: str) -> bool:
    """Resume an orphaned run under a new attempt; ``False`` when another worker holds the
    recovery lock or the run is no longer orphaned."""
    from workers import pipeline

    client = runs.client()
    lock = RECOVER_LOCK_PREFIX + run_id
    if not client.set(lock, WORKER_ID, nx=True, ex=120):
        return False
    try:
        record = runs.get(run_id) or {}
        owner = str(record.get("owner", ""))
        if record.get("state") not in LIVE_STATES or not owner or is_alive(owner):
            return False
        attempt = int(cast(int, client.hincrby(runs.run_key(run_id), "attempt", 1)))
        client.hincrby(runs.run_key(run_id), "recoveries", 1)
        runs.update(
            run_id,
            owner="",
            recovered_at=time.time(),
            recovered_from=f"{record.get('owner_step', '')}@{owner}",
        )
        logger.warning(
            "run %s: owner %s of step %s is gone; resuming as attempt %d",
            run_id,
            owner,
            record.get("owner_step"),
            attempt,
        )
        pipeline.resubmit(run_id, record.get("config") or {}, attempt)
        return True
    finally:
        if client.get(lock) == WORKER_ID:
            client.delete(lock)


def recover_orphans() -> list[str]:
    """Resume every orphaned run this worker can lock; returns their ids."""
    resumed = []
    for run_id in orphaned_runs():
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
        except Exception as e:  # Redis down: keep trying, the worker itself reconnects
            logger.warning("heartbeat/recovery: %s", e)
        _stop.wait(settings.worker_heartbeat_s)


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
    global _hostname
    if sender is not None and getattr(sender, "hostname", None):
        _hostname = str(sender.hostname)
    start()


@worker_shutdown.connect(weak=False)
def _on_shutdown(**_: Any) -> None:
    stop()


@task_postrun.connect(weak=False)
def _on_postrun(state: str | None = None, **_: Any) -> None:
    """After a task: release its claim once it succeeded (the chain's next task is queued by
    then). A task waiting for a retry keeps its claim: its worker holds the retry message."""
    if state == "SUCCESS":
        release_step()
    elif state != "RETRY":
        _current.pop("claim", None)
