"""The epoch loop's time budget (``optim.max_train_seconds``, training.budget.TimeBudget): an
epoch starts only if the seconds spent in the loop plus the longest epoch so far fit in the
budget, the first epoch always runs, 0 is no limit, a resumed run counts the seconds of the
run it resumes, and the stop is reported (FitResult, metrics.json, the run's progress view).

TimeBudget alone runs on a fake clock passed to it; ``fit`` runs on a fake clock passed as its
``clock`` that only the training epochs move (each epoch takes the seconds given to it), so
the rule is checked exactly; the distributed and train_from_export cases use the real clock
with a budget no epoch fits in."""

from __future__ import annotations

import inspect
import io
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from training import loop
from training.budget import TimeBudget
from training.checkpoint import CHECKPOINT_FILE, LoopState
from training.config import TrainConfig
from training.dataset import GraphData
from training.distributed import fit_distributed
from training.loop import FitResult, fit
from training.splits import Split
from training.train import train_from_export

#: (epoch seconds, the last repeating; budget; the epochs that start), for the rule alone and
#: through ``fit``
RULE_CASES = [
    ([3.0], 10.0, [1, 2, 3]),  # after 3: 9 s spent + 3 > 10
    ([2.0, 6.0, 1.0], 10.0, [1, 2]),  # after 2: 8 s spent + the longest, 6 > 10
    ([5.0], 10.0, [1, 2]),  # after 1: 5 + 5 = 10 fits exactly; after 2: 10 + 5 does not
    ([1.0, 4.0, 1.0, 1.0], 9.5, [1, 2, 3]),  # the longest epoch, not the last, counts
]


class Interrupt(Exception):
    pass


class FakeClock:
    """A clock that moves only when a test sets ``now``."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class EpochClock(FakeClock):
    """``fit``'s ``clock`` for a test: time moves only while a training epoch runs (the stub
    around ``loop.train_epoch`` moves it), by the next of ``seconds`` (the last value
    repeats)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, seconds: list[float]) -> None:
        super().__init__(1000.0)
        self.seconds = seconds
        self.epochs = 0
        real_epoch = loop.train_epoch

        def timed_epoch(*args: Any, **kwargs: Any) -> float:
            loss = real_epoch(*args, **kwargs)
            self.now += self.seconds[min(self.epochs, len(self.seconds) - 1)]
            self.epochs += 1
            return loss

        monkeypatch.setattr(loop, "train_epoch", timed_epoch)


def _run_epochs(budget: TimeBudget, clock: FakeClock, seconds: list[float]) -> list[int]:
    """Drive ``budget`` as the epoch loop does, epoch ``i`` taking ``seconds[i]`` on ``clock``
    (the last value repeats), up to 20 epochs; returns the epochs that started."""
    state = budget.state
    while state.epoch < 20 and budget.allows_next_epoch():
        secs = seconds[min(state.epoch, len(seconds) - 1)]
        clock.now += secs
        state.epoch += 1
        state.history.append({"epoch": state.epoch, "seconds": secs})
    return [int(h["epoch"]) for h in state.history]


@pytest.mark.parametrize(
    ("seconds", "limit", "started"),
    [*RULE_CASES, ([50.0], 1.0, [1])],  # the first epoch always starts
)
def test_the_budget_on_its_clock(
    seconds: list[float], limit: float, started: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(500.0)
    state = LoopState()
    budget = TimeBudget(state, limit, "lightgcn", clock)
    with caplog.at_level(logging.INFO, logger="training.budget"):
        assert _run_epochs(budget, clock, seconds) == started
    assert state.stopped_at_budget
    assert state.elapsed_s == sum(h["seconds"] for h in state.history)
    assert budget.longest_epoch() == max(h["seconds"] for h in state.history)
    logged = [r.getMessage() for r in caplog.records]
    assert (
        len(logged) == 1
        and f"lightgcn: time budget stops training after epoch {started[-1]}" in logged[0]
    )


def test_zero_is_no_limit_on_its_clock() -> None:
    clock = FakeClock(0.0)
    state = LoopState()
    budget = TimeBudget(state, 0.0, clock=clock)
    assert _run_epochs(budget, clock, [10_000.0]) == list(range(1, 21))
    assert not state.stopped_at_budget and budget.update() == state.elapsed_s == 200_000.0


def test_a_resumed_budget_counts_the_seconds_in_the_state() -> None:
    """The state a checkpoint restored holds 2 epochs of 3 s; the new process's clock has
    another origin. 6 + 3 s of epoch 3 = 9; epoch 4 would end at 12 > 10."""
    state = LoopState(
        epoch=2, history=[{"epoch": 1, "seconds": 3.0}, {"epoch": 2, "seconds": 3.0}], elapsed_s=6.0
    )
    clock = FakeClock(-40.0)
    budget = TimeBudget(state, 10.0, clock=clock)
    assert budget.update() == 6.0
    assert _run_epochs(budget, clock, [3.0]) == [1, 2, 3]
    assert state.stopped_at_budget and state.elapsed_s == 9.0


def test_the_default_clock_is_monotonic() -> None:
    assert TimeBudget(LoopState(), 1.0).clock is time.monotonic


def test_the_loop_measures_on_its_clock_parameter() -> None:
    """One clock mechanism: ``fit`` and ``end_epoch`` take their clock as a parameter (the
    tests below pass fake ones), ``time.perf_counter`` by default."""
    for function in (loop.fit, loop.end_epoch):
        assert inspect.signature(function).parameters["clock"].default is time.perf_counter


def _config(tiny_config: TrainConfig, budget: float, epochs: int = 6) -> TrainConfig:
    return tiny_config.replace(
        {
            "model.name": "lightgcn",
            "optim.epochs": epochs,
            "optim.patience": 0,
            "optim.batching": "full",
            "optim.checkpoint_interval_s": 0.0,
            "optim.max_train_seconds": budget,
        }
    )


def _epochs(result: FitResult) -> list[int]:
    return [int(h["epoch"]) for h in result.history]


@pytest.mark.parametrize(("seconds", "budget", "trained"), RULE_CASES)
def test_an_epoch_starts_only_if_it_fits(
    data: GraphData,
    tiny_config: TrainConfig,
    monkeypatch: pytest.MonkeyPatch,
    seconds: list[float],
    budget: float,
    trained: list[int],
) -> None:
    clock = EpochClock(monkeypatch, seconds)
    result = fit(data.split, _config(tiny_config, budget), clock=clock)
    assert _epochs(result) == trained
    assert result.stopped_at_budget and not result.stopped_at_cap
    assert result.last_epoch == trained[-1]
    assert [h["seconds"] for h in result.history] == [
        seconds[min(i, len(seconds) - 1)] for i in range(len(trained))
    ]
    # the best validated epoch is kept, as with early stopping
    best = max(result.history, key=lambda h: h["val_ndcg@10"])
    assert result.best_epoch == best["epoch"] and result.best_val == best["val_ndcg@10"]


def test_the_first_epoch_always_runs(
    data: GraphData, tiny_config: TrainConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = EpochClock(monkeypatch, [50.0])
    result = fit(data.split, _config(tiny_config, 1.0), clock=clock)
    assert _epochs(result) == [1] and result.stopped_at_budget
    assert result.best_epoch == 1 and result.last_epoch == 1


def test_zero_is_no_limit(
    data: GraphData, tiny_config: TrainConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = EpochClock(monkeypatch, [10_000.0])
    result = fit(data.split, _config(tiny_config, 0.0, epochs=4), clock=clock)
    assert _epochs(result) == [1, 2, 3, 4] and not result.stopped_at_budget


def test_a_run_inside_its_budget_ends_at_the_cap_not_the_budget(
    data: GraphData, tiny_config: TrainConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = EpochClock(monkeypatch, [1.0])
    result = fit(data.split, _config(tiny_config, 100.0, epochs=4), clock=clock)
    assert _epochs(result) == [1, 2, 3, 4] and not result.stopped_at_budget


def _interrupted_at(epoch: int) -> Any:
    def progress(info: dict[str, Any]) -> None:
        if info["epoch"] == epoch:
            raise Interrupt

    return progress


def test_a_resumed_run_counts_the_time_before_the_kill(
    data: GraphData, tiny_config: TrainConfig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = _config(tiny_config, 10.0)
    clock = EpochClock(monkeypatch, [3.0])
    with pytest.raises(Interrupt):  # killed in epoch 3: the checkpoint holds 2 epochs, 6 s
        fit(data.split, config, progress=_interrupted_at(3), checkpoint_dir=tmp_path, clock=clock)
    clock.now = 0.0  # another process: its clock has another origin
    seen: list[int] = []
    resumed = fit(
        data.split,
        config,
        progress=lambda i: seen.append(i["epoch"]),
        checkpoint_dir=tmp_path,
        clock=clock,
    )
    # 6 s before the kill + 3 s of epoch 3 = 9; epoch 4 would end at 12 > 10. Without the
    # 6 s counted, epochs 4 and 5 would run as well.
    assert resumed.resumed_from_epoch == 2 and seen == [3]
    assert resumed.stopped_at_budget and _epochs(resumed) == [1, 2, 3]
    # the finished loop is not trained again and still says why it stopped
    seen.clear()
    again = fit(
        data.split,
        config,
        progress=lambda i: seen.append(i["epoch"]),
        checkpoint_dir=tmp_path,
        clock=clock,
    )
    assert seen == [] and again.stopped_at_budget and again.last_epoch == 3


def test_a_checkpoint_from_before_the_budget_resumes_with_no_time_counted(
    data: GraphData, tiny_config: TrainConfig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = _config(tiny_config, 10.0)
    clock = EpochClock(monkeypatch, [3.0])
    with pytest.raises(Interrupt):
        fit(data.split, config, progress=_interrupted_at(3), checkpoint_dir=tmp_path, clock=clock)
    path = tmp_path / CHECKPOINT_FILE
    payload = torch.load(path, weights_only=True)
    assert payload["loop"]["elapsed_s"] == 6.0
    del payload["loop"]["elapsed_s"], payload["loop"]["stopped_at_budget"]
    torch.save(payload, path)
    seen: list[int] = []
    resumed = fit(
        data.split,
        config,
        progress=lambda i: seen.append(i["epoch"]),
        checkpoint_dir=tmp_path,
        clock=clock,
    )
    assert seen == [3, 4, 5] and resumed.stopped_at_budget  # 0 + 3 × 3 = 9; 9 + 3 > 10


def test_two_ranks_keep_to_the_budget(split: Split, tiny_config: TrainConfig) -> None:
    """Rank 0 decides before each epoch and broadcasts it; no epoch fits in a microsecond
    after the first, so both ranks stop after it (a rank that went on would hang the job)."""
    config = _config(tiny_config, 1e-6, epochs=4).replace(
        {"model.name": "dpgcn_no_ddpg", "device": "cpu"}
    )
    result = fit_distributed(split, config, 2, timeout_s=120)
    assert _epochs(result) == [1] and result.stopped_at_budget and result.last_epoch == 1


def test_metrics_json_says_the_budget_stopped_training(
    export_dir: Path, tiny_config: TrainConfig, tmp_path: Path
) -> None:
    config = _config(tiny_config, 1e-6, epochs=4).replace({"model.name": "dpgcn_no_ddpg"})
    metrics = train_from_export(export_dir, tmp_path / "m", config)
    assert metrics["stopped_at_budget"] is True and metrics["last_epoch"] == 1
    assert metrics["stopped_at_cap"] is False


def test_the_budget_is_a_setting_of_dpgcn_train(submitted_runs: list[dict[str, Any]]) -> None:
    from dpgcn.cli import app
    from workers import pipeline

    result = CliRunner().invoke(app, ["train", "--set", "optim.max_train_seconds=7200"])
    assert result.exit_code == 0, result.output
    assert pipeline.train_config(submitted_runs[0]).optim.max_train_seconds == 7200.0
    refused = CliRunner().invoke(app, ["train", "--set", "optim.max_train_seconds=-1"])
    assert refused.exit_code == 2 and "optim.max_train_seconds" in refused.output
    assert len(submitted_runs) == 1


def _run_records(stopped_at_budget: bool) -> Iterator[dict[str, Any]]:
    base: dict[str, Any] = {"state": "RUNNING", "train_started_at": 1.0, "step": "train"}
    for epoch in (1, 2, 3):
        base["progress"] = {"epoch": epoch, "epochs": 200, "loss": 0.5, "val_auc": 0.8}
        yield dict(base)
    metrics = {"best_epoch": 2, "stopped_at_budget": stopped_at_budget}
    yield dict(base, train_finished_at=4.0, metrics=metrics, state="SUCCESS", step="done")


@pytest.mark.parametrize(
    ("budget", "shown"),
    [(True, "time budget reached at epoch 3 of 200"), (False, "early stop at epoch 3 of 200")],
)
def test_dpgcn_train_wait_names_the_budget(budget: bool, shown: str) -> None:
    from dpgcn.cli_progress import follow_run

    records = _run_records(budget)
    out = io.StringIO()
    follow_run(lambda: next(records), 60, file=out, sleep=lambda _: None, epochs=200)
    lines = [" ".join(line.split()) for line in out.getvalue().splitlines()]
    done = [line for line in lines if line.startswith("train done")]
    assert len(done) == 1 and f"{shown}, best 2" in done[0], out.getvalue()


def test_the_evaluation_report_flags_a_run_the_budget_stopped() -> None:
    from training.report_markdown import _training_table

    def table(budget: list[bool]) -> str:
        info = {"best": [3, 2], "last": [3, 4], "cap": [False, False], "budget": budget}
        return _training_table({}, ["dpgcn"], {"dpgcn": info}).splitlines()[-1]

    assert "| no; time budget: **yes** |" in table([True, False])
    assert "| no |" in table([False, False]) and "budget" not in table([False, False])
