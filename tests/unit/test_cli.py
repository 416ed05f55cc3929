"""Every `dpgcn` command and sub-command answers --help; messages, the load summary and the
``train --wait`` progress bars."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from dpgcn.cli import app


def command_paths() -> list[list[str]]:
    root = typer.main.get_command(app)
    paths: list[list[str]] = []

    def walk(cmd: object, prefix: list[str]) -> None:
        paths.append(prefix)
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, [*prefix, name])

    walk(root, [])
    return paths


PATHS = command_paths()


def test_the_expected_commands_exist() -> None:
    names = {" ".join(p) for p in PATHS}
    for expected in (
        "services up",
        "services down",
        "services status",
        "services env",
        "load synthetic",
        "load movielens",
        "load generic",
        "train",
        "jobs",
        "worker",
        "beat",
        "serve",
        "evaluate",
        "demo",
    ):
        assert expected in names


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "dpgcn")
def test_help(path: list[str]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


# ------------------------------------------------------------------------- messages and summary


def test_train_names_the_valid_models() -> None:
    from training.models import MODEL_REGISTRY

    result = CliRunner().invoke(app, ["train", "--model", "dp-gcn"])
    assert result.exit_code == 2
    assert "unknown model 'dp-gcn'" in result.output
    assert f"valid: {', '.join(MODEL_REGISTRY)}" in result.output


def test_load_refuses_an_unknown_delimiter(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["load", "generic", "--path", str(tmp_path), "--delimiter", "::"]
    )
    assert result.exit_code == 2
    assert "--delimiter must be one of ',', ';'" in result.output


@pytest.mark.parametrize(("value", "char"), [(",", ","), (";", ";"), ("\\t", "\t"), ("tab", "\t")])
def test_delimiter_values(value: str, char: str) -> None:
    from dpgcn.cli_load import parse_delimiter

    assert parse_delimiter(value) == char


def test_commands_do_not_print_the_graph_stores_notes(tmp_path: Path) -> None:
    """``schema applied (19 statements)`` and the like stay out of a command's output."""
    logging.getLogger("graphstore").setLevel(logging.NOTSET)
    CliRunner().invoke(app, ["load", "generic", "--path", str(tmp_path / "missing")])
    assert logging.getLogger("graphstore").getEffectiveLevel() == logging.WARNING
    logging.getLogger("graphstore").setLevel(logging.NOTSET)
    CliRunner().invoke(app, ["-v", "load", "generic", "--path", str(tmp_path / "missing")])
    assert logging.getLogger("graphstore").getEffectiveLevel() == logging.DEBUG


def test_summary_says_what_changed() -> None:
    from dpgcn.cli_load import summary_lines
    from graphstore.ingest import LoadSummary

    summary = LoadSummary(
        source="generic(x)",
        rows={"users": 4426, "CLICKED": 10},
        written={"users": 4426, "CLICKED": 9},
        rejected=["x/events.csv:7: unknown event type 'like'"],
        skipped={"events.csv: repeated event_id": 73},
        before={"User": 4425, "CLICKED": 9},
        after={"User": 4426, "CLICKED": 9},
    )
    lines = summary_lines(summary)
    assert lines[1].split() == ["User", "4,425", "4,426", "+1"]
    assert lines[2].split() == ["CLICKED", "9", "9", "+0"]
    text = "\n".join(lines)
    assert "rejected rows: 1 (first: x/events.csv:7: unknown event type 'like')" in text
    assert "skipped, events.csv: repeated event_id: 73" in text
    assert "rows whose endpoints were missing: 1 (CLICKED 1)" in text


# ------------------------------------------------------------------------------ train --wait


def _records() -> list[dict[str, Any]]:
    """A run as the workers write it: export, 7 of 15 epochs (early stop), write-back…"""
    base: dict[str, Any] = {"state": "RUNNING", "export_started_at": 1.0}
    steps = [dict(base, step="export")]
    base.update(export_finished_at=2.0, export_edges="12345", train_started_at=2.0)
    for epoch in range(1, 8):
        progress = {"epoch": epoch, "epochs": 15, "loss": 0.5, "val_auc": 0.8}
        steps.append(dict(base, step="train", progress=progress))
    base.update(progress=progress, train_finished_at=9.0, metrics={"best_epoch": 4})
    base.update(write_back_started_at=9.0, step="write_back")
    steps.append(dict(base))
    base.update(write_back_finished_at=10.0, written='{"User": 300, "Item": 120, "Query": 40}')
    base.update(segments_started_at=10.0, step="segments")
    steps.append(dict(base))
    base.update(segments_finished_at=11.0, segments='{"k": 6}', activate_started_at=11.0)
    steps.append(dict(base))
    steps.append(dict(base, activate_finished_at=12.0, state="SUCCESS", step="done"))
    return steps


def test_wait_draws_a_bar_per_step_on_a_terminal() -> None:
    from dpgcn.cli_progress import follow_run

    records = iter(_records())
    out = io.StringIO()
    last = follow_run(lambda: next(records), 60, file=out, sleep=lambda _: None, tty=True)
    assert last is not None and last["state"] == "SUCCESS"
    text = out.getvalue().replace("\r", "\n")
    final = {line.split(":")[0].strip(): line for line in text.splitlines() if line.strip()}
    assert "12,345 edges" in final["export"]
    assert "7/7 epochs" in final["train"]
    assert "early stop at epoch 7 of 15, best 4" in final["train"]
    assert "460 vectors (User 300, Item 120, Query 40)" in final["write-back"]
    assert "6 segments" in final["segments"]
    assert "done" in final["activate"]


def test_wait_prints_plain_lines_elsewhere() -> None:
    from dpgcn.cli_progress import follow_run

    records = iter(_records())
    out = io.StringIO()
    follow_run(lambda: next(records), 60, file=out, sleep=lambda _: None, epochs=15)
    lines = [" ".join(line.split()) for line in out.getvalue().splitlines()]
    assert "\x1b" not in out.getvalue() and "\r" not in out.getvalue()
    assert lines == [
        "export started",
        "export done in 1.0s: 12,345 edges",
        "train epoch 1/15 loss=0.5000, val_auc=0.8000",
        *(f"train epoch {n}/15 loss=0.5000, val_auc=0.8000" for n in range(2, 8)),
        "train done 7/7 epochs in 7.0s: loss=0.5000, val_auc=0.8000, "
        "early stop at epoch 7 of 15, best 4",
        "write-back started",
        "write-back done in 1.0s: 460 vectors (User 300, Item 120, Query 40)",
        "segments started",
        "segments done in 1.0s: 6 segments",
        "activate started",
        "activate done in 1.0s: done",
    ]


def test_wait_outlasts_an_outage_of_the_record_store() -> None:
    from dpgcn.cli_progress import follow_run

    calls: Iterator[Any] = iter([ConnectionError("down"), {"state": "SUCCESS"}])

    def get() -> dict[str, Any]:
        value = next(calls)
        if isinstance(value, BaseException):
            raise value
        return value

    out = io.StringIO()
    last = follow_run(get, 60, file=out, sleep=lambda _: None, outages=(ConnectionError,))
    assert last == {"state": "SUCCESS"}
    assert "waiting for the run record (ConnectionError)" in out.getvalue()


def test_jobs_line_shows_the_headline_metrics() -> None:
    from dpgcn.cli import _headline

    metrics = {"model": "dpgcn", "device": "cpu", "best_epoch": 7, "last_epoch": 8}
    metrics |= {"val_auc": 0.75, "test_auc": 0.7, "test_ndcg@10": 0.3, "test_ndcg@5": 0.2}
    assert list(_headline(metrics)) == [
        "model",
        "best_epoch",
        "val_auc",
        "test_auc",
        "test_ndcg@10",
    ]
    assert _headline({"a": 1}) == {"a": 1}


def test_evaluate_sets_any_setting_by_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import training.evaluate

    seen: list[Any] = []
    monkeypatch.setattr(training.evaluate, "evaluate", lambda *args, **kwargs: seen.append(args[5]))
    (tmp_path / "graph.npz").write_bytes(b"")
    base = ["evaluate", "--export-dir", str(tmp_path), "--reuse-export", "--out", str(tmp_path)]
    cold = ["--set", "model.dpgcn.relation_mean=node", "--set", "model.dpgcn.side_scale=5"]
    result = CliRunner().invoke(app, [*base, "--models", "dpgcn", *cold])
    assert result.exit_code == 0, result.output
    assert (seen[0].model.dpgcn.relation_mean, seen[0].model.dpgcn.side_scale) == ("node", 5.0)
    bad = CliRunner().invoke(app, [*base, "--set", "model.dpgcn.relation_mean=sum"])
    assert bad.exit_code == 1 and "model.dpgcn.relation_mean" in bad.output
