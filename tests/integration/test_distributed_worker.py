"""Data-parallel training through a real worker: ``dpgcn train --processes 2`` reaches the
training step of a real ``dpgcn worker`` (solo pool), which starts two Gloo ranks on the CPU;
the run succeeds, is served like any other, and its metrics say it ran in two processes."""

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


def test_a_worker_trains_in_two_data_parallel_processes(
    driver: Driver,
    only_our_workers: None,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
) -> None:
    load_small(driver)
    log = tmp_path / "w.log"
    worker = start_worker("ddp", "graph,training", log)
    try:
        before = set(runs.run_ids(1000))
        done = subprocess.run(
            [DPGCN, "train", "--epochs", "3", "--dim", "16", "--processes", "2", "--wait"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        (run_id,) = set(runs.run_ids(1000)) - before
        record = runs.get(run_id) or {}
        assert record["state"] == "SUCCESS", record
        assert "ddp" in record["train_worker"], record
        metrics = json.loads((pipeline.paths(run_id)["model"] / "metrics.json").read_text())
        assert metrics["processes"] == 2
        assert [h["epoch"] for h in metrics["history"]] == [1, 2, 3]
        assert active_versions(driver) == [run_id]
        assert "dpgcn: 2 ranks (gloo)" in log.read_text()  # the DDP path ran, not one process
    finally:
        stop_worker(worker)
