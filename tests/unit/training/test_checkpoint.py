"""Interval checkpoints (training/checkpoint.py): an interrupted fit resumes to the result of
an uninterrupted one, on both the full-batch and the mini-batch path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from training.checkpoint import CHECKPOINT_FILE, CheckpointError
from training.config import TrainConfig
from training.dataset import GraphData
from training.loop import fit
from training.train import evaluate_fit, train_from_export


class Interrupt(Exception):
    pass


def _stop_at(epoch: int) -> Any:
    def progress(info: dict[str, Any]) -> None:
        if info["epoch"] == epoch:
            raise Interrupt

    return progress


def _config(tiny_config: TrainConfig, batching: str) -> TrainConfig:
    return tiny_config.replace(
        {
            "model.name": "dpgcn",
            "optim.epochs": 6,
            "optim.patience": 0,
            "optim.batching": batching,
            "optim.checkpoint_interval_s": 0.0,
            "policy.steps": 5,
            "policy.env_batch": 32,
            "policy.batch_size": 32,
        }
    )


@pytest.mark.parametrize("batching", ["full", "minibatch"])
def test_interrupted_fit_resumes_to_the_uninterrupted_result(
    data: GraphData, tiny_config: TrainConfig, tmp_path: Path, batching: str
) -> None:
    config = _config(tiny_config, batching)
    whole = fit(data.split, config)
    with pytest.raises(Interrupt):  # killed during epoch 4: the checkpoint holds epoch 3
        fit(data.split, config, progress=_stop_at(4), checkpoint_dir=tmp_path)
    assert (tmp_path / CHECKPOINT_FILE).is_file()
    seen: list[int] = []
    resumed = fit(
        data.split, config, progress=lambda i: seen.append(i["epoch"]), checkpoint_dir=tmp_path
    )
    assert resumed.resumed_from_epoch == 3
    assert seen == [4, 5, 6]
    assert resumed.batching == whole.batching == batching
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in whole.history]
    assert (resumed.best_epoch, resumed.best_val) == (whole.best_epoch, whole.best_val)
    for name, value in whole.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], value), name
    assert evaluate_fit(resumed, "test") == evaluate_fit(whole, "test")
    assert resumed.policy is not None and whole.policy is not None
    assert resumed.policy.alpha == whole.policy.alpha


def test_a_finished_loop_is_not_trained_again(
    data: GraphData, tiny_config: TrainConfig, tmp_path: Path
) -> None:
    config = _config(tiny_config, "full").replace({"optim.epochs": 3})
    first = fit(data.split, config, checkpoint_dir=tmp_path)
    seen: list[int] = []
    again = fit(data.split, config, progress=lambda i: seen.append(i), checkpoint_dir=tmp_path)
    assert seen == [] and again.resumed_from_epoch == 3
    assert again.best_epoch == first.best_epoch and again.last_epoch == 3
    assert not list(tmp_path.glob(".*tmp*")), "a temporary checkpoint file was left behind"


def test_checkpoint_of_another_run_is_refused(
    data: GraphData, tiny_config: TrainConfig, tmp_path: Path
) -> None:
    config = _config(tiny_config, "full").replace({"optim.epochs": 2})
    fit(data.split, config, checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointError, match="lr"):
        fit(data.split, config.replace({"optim.lr": 0.1}), checkpoint_dir=tmp_path)
    # the device and the interval may change between the run and its resumption
    fit(
        data.split,
        config.replace({"device": "cpu", "optim.checkpoint_interval_s": 5}),
        checkpoint_dir=tmp_path,
    )
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="unreadable"):
        fit(data.split, config, checkpoint_dir=tmp_path)


def test_interval_spaces_the_checkpoints(
    data: GraphData, tiny_config: TrainConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With an interval longer than the run, only the end-of-loop checkpoint is written."""
    from training import checkpoint

    saved: list[int] = []
    real = checkpoint.Checkpointer.save

    def save(self: Any, state: Any, trainer: Any) -> None:
        saved.append(state.epoch)
        real(self, state, trainer)

    monkeypatch.setattr(checkpoint.Checkpointer, "save", save)
    config = _config(tiny_config, "full").replace({"optim.epochs": 3})
    fit(
        data.split,
        config.replace({"optim.checkpoint_interval_s": 3600}),
        checkpoint_dir=tmp_path / "a",
    )
    assert saved == [3]
    saved.clear()
    fit(data.split, config, checkpoint_dir=tmp_path / "b")
    assert saved == [1, 2, 3, 3]


def test_train_from_export_removes_its_checkpoint(
    export_dir: Path, tiny_config: TrainConfig, tmp_path: Path
) -> None:
    config = _config(tiny_config, "full").replace(
        {"optim.epochs": 2, "model.name": "dpgcn_no_ddpg"}
    )
    metrics = train_from_export(export_dir, tmp_path / "model", config, checkpoint_dir=tmp_path)
    assert metrics["resumed_from_epoch"] == 0 and metrics["batching"] == "full"
    assert (tmp_path / "model" / "metrics.json").is_file()
    assert not (tmp_path / CHECKPOINT_FILE).exists()
