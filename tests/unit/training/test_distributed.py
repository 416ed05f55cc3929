"""Data-parallel training (training/distributed.py) with real processes: two Gloo ranks on the
CPU train DP-GCN through DistributedDataParallel, full-batch and mini-batch; their weights are
identical after training (the all-reduce averaged every step's gradients, although each rank
saw other interactions), the loss falls, rank 0 alone checkpoints; a rank killed mid-run
fails the job with an error naming it instead of hanging the other rank."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from training.checkpoint import CHECKPOINT_FILE
from training.config import TrainConfig
from training.distributed import (
    DistributedError,
    _Job,
    _rank_main,
    fit_distributed,
    shard_positions,
)
from training.splits import Split
from training.train import train_from_export


def _config(tiny_config: TrainConfig, batching: str, epochs: int = 4) -> TrainConfig:
    return tiny_config.replace(
        {
            "model.name": "dpgcn_no_ddpg",
            "optim.epochs": epochs,
            "optim.patience": 0,
            "optim.batching": batching,
            "device": "cpu",
        }
    )


def _rank_states(workdir: Path) -> list[dict[str, torch.Tensor]]:
    return [
        torch.load(workdir / f"rank-{r}.pt", map_location="cpu", weights_only=True) for r in (0, 1)
    ]


def test_shard_positions_split_the_order_into_equal_shards() -> None:
    order = np.array([7, 3, 5, 0, 1, 6, 2, 4, 8, 9, 10])
    shards = [shard_positions(order, r, 3) for r in range(3)]
    assert [len(s) for s in shards] == [4, 4, 4]  # 11 padded to 12 by wrapping around
    assert sorted(np.concatenate(shards).tolist()) == sorted([*order.tolist(), 7])
    assert shards[1].tolist() == [3, 1, 4, 10]


@pytest.mark.parametrize("batching", ["full", "minibatch"])
def test_two_gloo_ranks_train_one_model(
    split: Split, tiny_config: TrainConfig, tmp_path: Path, batching: str
) -> None:
    config = _config(tiny_config, batching)
    seen: list[dict[str, Any]] = []
    work, ckpt = tmp_path / "work", tmp_path / "ckpt"
    result = fit_distributed(
        split,
        config,
        2,
        progress=seen.append,
        checkpoint_dir=ckpt,
        timeout_s=120,
        workdir=work,
        save_rank_states=True,
    )
    assert result.batching == batching
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4]
    assert [p["epoch"] for p in seen] == [1, 2, 3, 4]
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < losses[0]
    assert 1 <= result.best_epoch <= 4 and result.last_epoch == 4
    # The ranks trained on different shards; the all-reduce kept their weights equal.
    zero, one = _rank_states(work)
    assert zero.keys() == one.keys()
    for key in zero:
        assert torch.equal(zero[key], one[key]), key
    # The calling process's model holds rank 0's best weights.
    assert len(result.epoch_train_seconds) == 4
    if result.best_epoch == 4:
        for key, value in result.model.state_dict().items():
            assert torch.equal(value.cpu(), zero[key]), key
    # One checkpoint, written by rank 0, marked done after the last epoch.
    assert sorted(p.name for p in ckpt.iterdir()) == [CHECKPOINT_FILE]
    payload = torch.load(ckpt / CHECKPOINT_FILE, map_location="cpu", weights_only=True)
    assert payload["loop"]["epoch"] == 4 and payload["loop"]["done"]


def test_a_killed_rank_fails_the_job_without_hanging(
    split: Split, tiny_config: TrainConfig, tmp_path: Path
) -> None:
    config = _config(tiny_config, "full", epochs=2000)
    killed: list[int] = []

    def kill_a_rank(info: dict[str, Any]) -> None:
        if info["epoch"] >= 2 and not killed:
            ranks = multiprocessing.active_children()
            assert len(ranks) == 2
            killed.append(ranks[-1].pid or 0)
            os.kill(killed[0], signal.SIGKILL)

    start = time.monotonic()
    with pytest.raises(DistributedError, match=r"rank \d was killed by SIGKILL"):
        fit_distributed(
            split, config, 2, progress=kill_a_rank, timeout_s=60, workdir=tmp_path / "work"
        )
    assert killed
    assert time.monotonic() - start < 120
    assert multiprocessing.active_children() == []  # the surviving rank was stopped


def test_train_from_export_runs_the_processes_of_its_config(
    export_dir: Path, tiny_config: TrainConfig, tmp_path: Path
) -> None:
    """The pipeline's entry point: ``TrainConfig.optim.processes`` > 1 trains through the ranks
    and writes the usual model directory (the DDPG stage runs in the calling process)."""
    import json

    config = _config(tiny_config, "full", epochs=2).replace(
        {"model.name": "dpgcn", "optim.processes": 2}
    )
    metrics = train_from_export(export_dir, tmp_path / "model", config)
    assert metrics["processes"] == 2 and metrics["last_epoch"] == 2
    assert "policy" in metrics
    written = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert written["processes"] == 2
    assert (tmp_path / "model" / "embeddings.npz").is_file()


def test_a_rank_whose_peers_never_join_times_out(
    split: Split, tiny_config: TrainConfig, tmp_path: Path
) -> None:
    """The rendezvous has a timeout: rank 0 of two, alone, gives up instead of waiting."""
    job = _Job(
        split=split,
        config=_config(tiny_config, "full"),
        world=2,
        workdir=tmp_path,
        checkpoint_dir=None,
        timeout_s=2.0,
        threads=1,
        save_rank_states=False,
    )
    start = time.monotonic()
    with pytest.raises(DistributedError, match="did not all join within 2 s"):
        _rank_main(0, job)
    assert time.monotonic() - start < 30
