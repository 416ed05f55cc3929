"""Shared constants and helpers of the integration tests."""

from __future__ import annotations

import time
from typing import Any

from graphstore.sources import synthetic
from workers import runs

#: The small synthetic shop the trained-model fixture loads and trains on.
SMALL = synthetic.SyntheticSpec(users=300, items=120, events_per_user=12, seed=3)
#: A quick DP-GCN configuration (seconds on 2 cores).
FAST = {"model.name": "dpgcn", "optim.epochs": 2, "model.dim": 16}


def control(command: str, *args: Any, **kwargs: Any) -> Any:
    """``app.control.<command>(...)`` on a new broker connection. Several tests restart Redis;
    the connections this process pooled before are then closed by the server, and a broadcast
    that drew one from Celery's pool failed with "Connection closed by server"."""
    from workers.app import app

    with app.connection_for_write() as connection:
        return getattr(app.control, command)(*args, connection=connection, **kwargs)


def wait_for_run(run_id: str, timeout: float = 600) -> dict[str, Any]:
    """Poll the run record until the pipeline succeeds or fails."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = runs.get(run_id) or {}
        if record.get("state") in ("SUCCESS", "FAILURE"):
            return record
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} did not finish: {runs.get(run_id)}")
