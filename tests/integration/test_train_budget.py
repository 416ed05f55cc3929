"""The training time budget through a real worker: ``dpgcn train --set
optim.max_train_seconds=…`` reaches the worker's training step, which stops before an epoch
that does not fit; the run succeeds and is activated, and ``--wait``, the run record and
``metrics.json`` say that the budget ended the training."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from neo4j import Driver

from tests.integration.conftest import DPGCN
from tests.integration.test_workers_recovery import (
    active_versions,
    load_small,
    only_our_workers,  # noqa: F401  (the fixture, used by name)
    start_worker,
    stop_worker,
)
from workers import pipeline, runs


def test_a_budgeted_run_stops_at_its_budget_and_says_so(
    driver: Driver,
    only_our_workers: None,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
) -> None:
    load_small(driver)
    log = tmp_path / "w.log"
    worker = start_worker("budget", "graph,training", log)
    try:
        before = set(runs.run_ids(1000))
        # no epoch fits in a millisecond: the first runs (it always does), the second not
        budget = ["--set", "optim.max_train_seconds=0.001", "--set", "optim.patience=0"]
        done = subprocess.run(
            [DPGCN, "train", "--epochs", "20", "--dim", "16", *budget, "--wait"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "time budget reached at epoch 1 of 20" in done.stdout, done.stdout
        (run_id,) = set(runs.run_ids(1000)) - before
        record = runs.get(run_id) or {}
        assert record["state"] == "SUCCESS", record
        assert record["metrics"]["stopped_at_budget"] is True, record["metrics"]
        assert record["metrics"]["last_epoch"] == 1
        metrics = json.loads((pipeline.paths(run_id)["model"] / "metrics.json").read_text())
        assert metrics["stopped_at_budget"] is True and metrics["stopped_at_cap"] is False
        assert [h["epoch"] for h in metrics["history"]] == [1]
        assert active_versions(driver) == [run_id]
        assert "time budget stops training after epoch 1" in log.read_text()
    finally:
        stop_worker(worker)
