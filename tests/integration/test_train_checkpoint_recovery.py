"""A worker SIGKILLed mid-training: the recovered run's train step continues from the
checkpoint the killed worker wrote under the run's directory, not from epoch 1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import torch
from neo4j import Driver

from tests.integration.helpers import wait_for_run
from tests.integration.test_workers_recovery import (
    FAST_RECOVERY,
    load_small,
    only_our_workers,  # noqa: F401  (the fixture, used by name)
    start_worker,
    stop_worker,
    wait_for,
)
from training.checkpoint import CHECKPOINT_FILE
from workers import pipeline, runs


def checkpointed_epoch(path: Path) -> int:
    if not path.is_file():
        return 0
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["loop"]["epoch"])
    except Exception:  # replaced while being read: the next poll sees the new one
        return 0


def test_recovered_run_resumes_training_from_its_checkpoint(
    driver: Driver,
    only_our_workers: None,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
) -> None:
    load_small(driver)
    first = start_worker("ckpt-a", "graph,training", tmp_path / "a.log", FAST_RECOVERY)
    second: subprocess.Popen[bytes] | None = None
    try:
        run_id = runs.new_run_id()
        # Small batches make each epoch many propagation steps, so the run is still training
        # when the test sees the epoch-2 checkpoint and kills the worker, on a fast machine too
        # (with the default batch all 12 epochs of this graph took less than one poll).
        config = {
            "model.name": "dpgcn",
            "optim.epochs": 20,
            "model.dim": 16,
            "optim.patience": 0,
            "optim.batch_size": 16,
        }
        pipeline.submit_pipeline(run_id, {**config, "optim.checkpoint_interval_s": 0})
        ckpt = pipeline.paths(run_id)["checkpoint"] / CHECKPOINT_FILE
        wait_for(lambda: checkpointed_epoch(ckpt) >= 2, 300, "a checkpoint of epoch 2")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        killed_at = checkpointed_epoch(ckpt)
        assert 2 <= killed_at < config["optim.epochs"]
        model_dir = pipeline.paths(run_id)["model"]
        assert not (model_dir / "metrics.json").exists()

        second = start_worker("ckpt-b", "graph,training", tmp_path / "b.log", FAST_RECOVERY)
        record = wait_for_run(run_id, timeout=600)
        assert record["state"] == "SUCCESS", record
        assert record["recoveries"] == 1 and "ckpt-b" in record["train_worker"], record
        metrics = json.loads((model_dir / "metrics.json").read_text())
        assert metrics["resumed_from_epoch"] == killed_at
        assert [h["epoch"] for h in metrics["history"]] == list(
            range(1, config["optim.epochs"] + 1)
        )
        assert record["metrics"]["resumed_from_epoch"] == killed_at
        assert f"resuming dpgcn after epoch {killed_at}" in (tmp_path / "b.log").read_text()
        assert not ckpt.exists()  # removed once the model directory was written
    finally:
        stop_worker(first, signal.SIGKILL)
        if second is not None:
            stop_worker(second)
