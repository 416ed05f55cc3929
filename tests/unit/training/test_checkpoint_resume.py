"""A training process killed with SIGKILL after its first checkpoints resumes from the last
one when started again with the same checkpoint directory, and ends with the metrics of an
uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from training.checkpoint import CHECKPOINT_FILE
from training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[3]

#: The training job: train_from_export with a checkpoint directory, one thread (the same
#: numbers in every process); ``slow`` sleeps after each epoch so the test can kill it.
JOB = """
import sys, time
from pathlib import Path
import torch
torch.set_num_threads(1)
from training.config import TrainConfig
from training.train import train_from_export
export, out, config, ckpt, slow = sys.argv[1:6]
progress = (lambda info: time.sleep(float(slow))) if float(slow) else None
train_from_export(
    Path(export), Path(out), TrainConfig.from_json(Path(config).read_text()), progress,
    checkpoint_dir=Path(ckpt) if ckpt != "-" else None,
)
"""


def _start(export: Path, out: Path, config: Path, ckpt: str, slow: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", JOB, str(export), str(out), str(config), ckpt, str(slow)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _checkpoint_epoch(path: Path) -> int:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    return int(payload["loop"]["epoch"])


def test_sigkilled_training_resumes_from_its_checkpoint(export_dir: Path, tmp_path: Path) -> None:
    config = TrainConfig().replace(
        {
            "model.name": "dpgcn",
            "model.dim": 8,
            "optim.epochs": 8,
            "optim.patience": 0,
            "optim.batch_size": 64,
            "model.mlp_hidden": (16,),
            "eval.top_k": (5, 10),
            "eval.sampled_candidates": 20,
            "optim.checkpoint_interval_s": 0.0,
            "policy.steps": 5,
            "policy.env_batch": 32,
            "policy.batch_size": 32,
        }
    )
    config_file = tmp_path / "config.json"
    config_file.write_text(config.to_json())
    ckpt = tmp_path / "checkpoint"

    job = _start(export_dir, tmp_path / "killed", config_file, str(ckpt), slow=1.0)
    deadline = time.monotonic() + 120
    try:
        while True:  # wait for the checkpoint of epoch 2 at least, then kill
            assert job.poll() is None, f"training exited early: {job.communicate()[1][-2000:]}"
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            if (ckpt / CHECKPOINT_FILE).is_file() and _checkpoint_epoch(
                ckpt / CHECKPOINT_FILE
            ) >= 2:
                break
            time.sleep(0.05)
    finally:
        job.send_signal(signal.SIGKILL)
        job.communicate()
    assert job.returncode == -signal.SIGKILL
    killed_at = _checkpoint_epoch(ckpt / CHECKPOINT_FILE)
    assert 2 <= killed_at < config.optim.epochs
    assert not (tmp_path / "killed" / "metrics.json").exists()

    resumed = _start(export_dir, tmp_path / "resumed", config_file, str(ckpt), slow=0.0)
    whole = _start(export_dir, tmp_path / "whole", config_file, "-", slow=0.0)
    for job in (resumed, whole):
        _, err = job.communicate(timeout=300)
        assert job.returncode == 0, err[-3000:]

    got = json.loads((tmp_path / "resumed" / "metrics.json").read_text())
    want = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    assert got["resumed_from_epoch"] == killed_at  # it went on with epoch killed_at + 1 > 1
    assert got["last_epoch"] == want["last_epoch"] == config.optim.epochs
    assert [h["epoch"] for h in got["history"]] == list(range(1, config.optim.epochs + 1))
    assert [h["loss"] for h in got["history"]] == [h["loss"] for h in want["history"]]
    assert got["best_epoch"] == want["best_epoch"]
    assert got["val"] == want["val"] and got["test"] == want["test"]
    assert not (ckpt / CHECKPOINT_FILE).exists()  # removed once the model directory is written
