"""``dpgcn worker --device``: checked at start, passed to the worker's training steps."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from dpgcn.cli import app
from training.device import select_device
from workers import pipeline
from workers.app import app as celery_app


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The argv of every worker the command would start (none is started)."""
    calls: list[list[str]] = []
    monkeypatch.setattr(celery_app, "worker_main", lambda argv: calls.append(list(argv)))
    monkeypatch.setattr(pipeline, "_worker_device", None)
    return calls


def test_worker_device_reaches_the_training_config(started: list[list[str]]) -> None:
    result = CliRunner().invoke(app, ["worker", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert len(started) == 1 and "worker" in started[0]
    assert pipeline.train_config({}).device == "cpu"
    # the worker's device wins over the run's
    assert pipeline.train_config({"device": "auto", "optim.epochs": 3}).device == "cpu"
    assert pipeline.train_config({"device": "auto", "optim.epochs": 3}).optim.epochs == 3


def test_auto_leaves_the_run_config_alone(started: list[list[str]]) -> None:
    result = CliRunner().invoke(app, ["worker"])
    assert result.exit_code == 0, result.output
    assert pipeline.train_config({}).device == "auto"
    assert pipeline.train_config({"device": "cpu"}).device == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present")
def test_a_cuda_device_without_cuda_is_refused(started: list[list[str]]) -> None:
    result = CliRunner().invoke(app, ["worker", "--device", "cuda:0"])
    assert result.exit_code == 2
    assert "CUDA is not available" in result.output
    assert started == [] and pipeline._worker_device is None


def test_an_unknown_device_is_refused(started: list[list[str]]) -> None:
    result = CliRunner().invoke(app, ["worker", "--device", "tpu7"])
    assert result.exit_code == 2 and "tpu7" in result.output
    assert started == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_device_is_used_when_present(started: list[list[str]]) -> None:
    result = CliRunner().invoke(app, ["worker", "--device", "cuda:0"])
    assert result.exit_code == 0, result.output
    assert pipeline.train_config({}).device == "cuda:0"


def test_auto_picks_cuda_when_the_machine_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The choice itself, on a machine pretending to have one GPU."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert select_device("auto") == torch.device("cuda")
    assert select_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(Exception, match="1 CUDA device"):
        select_device("cuda:1")


def test_train_passes_batching(submitted_runs: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(app, ["train", "--batching", "minibatch", "--epochs", "2"])
    assert result.exit_code == 0, result.output
    assert submitted_runs == [
        {"model.name": "dpgcn", "optim.epochs": 2, "optim.batching": "minibatch"}
    ]
    bad = CliRunner().invoke(app, ["train", "--batching", "sometimes"])
    assert bad.exit_code == 2 and "full, minibatch" in bad.output


def test_a_message_queued_with_flat_names_still_trains() -> None:
    """Celery messages and run records written before TrainConfig had sections hold the old
    flat names; the worker reads them through the one migration."""
    cfg = pipeline.train_config({"model": "gcn", "epochs": 3, "dim": 16, "batch_size": 64})
    assert (cfg.model.name, cfg.optim.epochs, cfg.model.dim, cfg.optim.batch_size) == (
        "gcn",
        3,
        16,
        64,
    )


def test_train_passes_the_cold_start_share(submitted_runs: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(app, ["train", "--cold-simulation", "0.3"])
    assert result.exit_code == 0, result.output
    assert submitted_runs == [{"model.name": "dpgcn", "model.dpgcn.cold_simulation": 0.3}]
    assert pipeline.train_config(submitted_runs[0]).model.dpgcn.cold_simulation == 0.3
    bad = CliRunner().invoke(app, ["train", "--cold-simulation", "1.5"])
    assert bad.exit_code == 2 and len(submitted_runs) == 1


def test_train_passes_processes(submitted_runs: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(app, ["train", "--processes", "2"])
    assert result.exit_code == 0, result.output
    assert submitted_runs == [{"model.name": "dpgcn", "optim.processes": 2}]
    assert pipeline.train_config(submitted_runs[0]).optim.processes == 2
    assert CliRunner().invoke(app, ["train", "--processes", "0"]).exit_code == 2


def test_train_passes_any_setting_by_path(submitted_runs: list[dict[str, Any]]) -> None:
    args = ["train", "--cold-simulation", "0.5", "--set", "model.dpgcn.relation_mean=node"]
    result = CliRunner().invoke(app, [*args, "--set", "model.dpgcn.side_scale=5"])
    assert result.exit_code == 0, result.output
    cfg = pipeline.train_config(submitted_runs[0])
    assert (cfg.model.dpgcn.relation_mean, cfg.model.dpgcn.side_scale) == ("node", 5.0)
    for bad in ("model.dpgcn.side_scale", "model.dpgcn.side_scale=0.5", "optim.nope=1"):
        refused = CliRunner().invoke(app, ["train", "--set", bad])
        assert refused.exit_code == 2, (bad, refused.output)
    assert len(submitted_runs) == 1


def test_a_message_queued_before_model_dpgcn_trains_as_then() -> None:
    """A Celery message queued by `dpgcn train --cold-simulation` before DP-GCN's settings
    moved to model.dpgcn: the share by its new path, and the relation mean and side scale the
    code of that time derived from it."""
    cfg = pipeline.train_config({"model.name": "dpgcn", "model.cold_simulation": 0.5})
    assert cfg.model.dpgcn.cold_simulation == 0.5
    assert (cfg.model.dpgcn.relation_mean, cfg.model.dpgcn.side_scale) == ("node", 5.0)
    low = pipeline.train_config({"model.name": "dpgcn", "model.cold_simulation": 0.1})
    assert (low.model.dpgcn.relation_mean, low.model.dpgcn.side_scale) == ("type", 1.0)
