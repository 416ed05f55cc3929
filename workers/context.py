"""What every worker task shares: the graph driver and database, a run's paths, the retry
policy, this worker's identity and the claim of the step its task is running.

The task modules (:mod:`workers.pipeline`, :mod:`workers.segment_tasks`, :mod:`workers.online`,
:mod:`workers.privacy`, :mod:`workers.refresh`, :mod:`workers.outbox`) import this module; it
imports none of them, nor the Celery app, so imports run one way (a unit test checks that no
module imports itself back).

Claims: a pipeline task claims its step in the run record (``owner``) for the run's current
``attempt`` before doing any work (:func:`claim_step`) and releases it after it finished and
the next task of the chain is queued (on ``task_postrun``). The claim comes with a lease
(``dpgcn:lease:<run_id>``, ``DPGCN_WORKER_HEARTBEAT_TTL_S``) that a thread of the task's own
process renews while the claim is held; it stops when the task ends, however it ends. A task
waiting for a retry keeps its claim (its worker holds the retry message) and its lease is
renewed too. :mod:`workers.recovery` resumes the runs whose owner or lease is gone.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any

from celery.signals import task_postrun, task_retry
from neo4j import Driver

from graphstore.driver import connect
from graphstore.errors import GraphUnavailableError
from workers import runs

logger = logging.getLogger(__name__)

#: This worker process's identity (forked pool children inherit it from the main process).
WORKER_ID = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"

#: The retry policy of tasks that talk to Neo4j: a graph outage is waited out.
RETRY: dict[str, Any] = {
    "autoretry_for": (GraphUnavailableError,),
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 12,
}

_hostname = socket.gethostname()
#: The claim held by the task running in this process: (run_id, attempt).
_current: dict[str, tuple[str, int]] = {}
#: Claims of tasks of this process waiting for a retry (their worker holds the retry
#: message): run id → attempt. Their leases are renewed too.
_waiting: dict[str, int] = {}
#: The lease-renewing thread of this process (pool children start their own): pid → thread.
_lease_threads: dict[int, threading.Thread] = {}


@lru_cache(maxsize=1)
def driver() -> Driver:
    """This process's Neo4j driver, from the settings."""
    from dpgcn.services import neo4j_connection
    from dpgcn.settings import get_settings

    conn = neo4j_connection(get_settings())
    return connect(conn.uri, conn.user, conn.password)


def database() -> str:
    from dpgcn.settings import get_settings

    return get_settings().neo4j.database


def paths(run_id: str) -> dict[str, Path]:
    """The run's directories: ``root``, ``export``, ``model`` and ``checkpoint`` (interval
    checkpoints of the train step: a re-run of the step continues from the last one)."""
    root = runs.run_dir(run_id)
    return {
        "root": root,
        "export": root / "export",
        "model": root / "model",
        "checkpoint": root / "checkpoint",
    }


def set_hostname(name: str) -> None:
    """The Celery node name recorded with claims and heartbeats (set when the worker is
    ready)."""
    global _hostname
    _hostname = name


def hostname() -> str:
    return _hostname


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
    _waiting.pop(run_id, None)
    _start_lease_thread()
    return True


def claim_or_skip(task: Any, run_id: str, step: str, attempt: int) -> bool:
    """Claim the step for ``task``; ``False`` for a late or stale delivery, which must do
    nothing (the rest of its chain follows and does nothing either, so its result still
    resolves)."""
    return claim_step(run_id, step, attempt, getattr(task.request, "hostname", None))


def current_claim() -> tuple[str, int] | None:
    """(run_id, attempt) of the step the task running in this process claimed."""
    return _current.get("claim")


def release_step() -> None:
    claim = _current.pop("claim", None)
    if claim is not None:
        runs.release(claim[0], claim[1], WORKER_ID)


def _renew_leases() -> None:
    from dpgcn.settings import get_settings

    while True:
        time.sleep(max(0.2, get_settings().worker_heartbeat_s))
        claims = dict(_waiting)
        current = _current.get("claim")
        if current is not None:
            claims[current[0]] = current[1]
        for run_id, attempt in claims.items():
            try:
                if not runs.renew_lease(run_id, attempt, WORKER_ID):
                    _waiting.pop(run_id, None)  # resumed elsewhere or released
            except Exception as e:  # Redis down: the next renewal re-creates the lease
                logger.warning("run %s: lease not renewed (%s)", run_id, e)


def _start_lease_thread() -> None:
    pid = os.getpid()
    thread = _lease_threads.get(pid)
    if thread is not None and thread.is_alive():
        return
    thread = threading.Thread(target=_renew_leases, name="dpgcn-lease", daemon=True)
    _lease_threads[pid] = thread
    thread.start()


@task_postrun.connect(weak=False)
def _on_postrun(state: str | None = None, **_: Any) -> None:
    """After a task: release its claim once it succeeded (the chain's next task is queued by
    then). A task waiting for a retry keeps its claim: its worker holds the retry message."""
    if state == "SUCCESS":
        release_step()
    elif state == "RETRY":
        claim = _current.pop("claim", None)
        if claim is not None:
            _waiting[claim[0]] = claim[1]
    else:
        _current.pop("claim", None)


@task_retry.connect(weak=False)
def _on_retry(request: Any = None, reason: Any = None, **_: Any) -> None:
    """Count a task's retries (Neo4j unavailable…) in its run record."""
    claim = current_claim()
    if claim is None:
        return
    try:
        runs.increment(claim[0], "retries")
        runs.update(claim[0], last_error=str(reason)[:500], state="RETRYING")
    except Exception as e:
        logger.warning("could not record a retry: %s", e)
