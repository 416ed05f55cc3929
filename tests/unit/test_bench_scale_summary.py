"""``bench/scale_run.py --summarize … --plot``: the table's slopes and the figure's legends on
three fake runs in the ``--json`` format, each stage's wall time a planted power law of the
relationships (so its log-log slope is known by hand)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import scale_summary
from tests.paths import ROOT

#: The planted exponent of each pipeline stage's seconds = c · relationships ** exponent.
EXPONENTS = {"export": 0.9, "train": 1.2, "write_back": 1.0, "segments": 0.75, "activate": 0.5}
#: Load seconds at the three scales: log2 steps of 0, 1 and 3 over x steps of 0, 1, 2, so the
#: least-squares slope is cov / var = ((-1)(-4/3) + (1)(5/3)) / 2 = 1.5 (not a power law).
LOAD_SECONDS = (10.0, 20.0, 80.0)
SCALES = (0.25, 0.5, 1.0)


def fake_run(i: int, scale: float) -> dict[str, Any]:
    """A run's figures in ``scale_run.py --json``'s format (the keys of a real 1/100 run)."""
    rels = round(19_900_000 * scale)
    stages = {
        step: {
            "seconds": 1e-4 * rels**exp,
            "worker_peak_rss_mib": 800.0 * scale**0.5,
            "neo4j_peak_rss_mib": 4600.0,
        }
        for step, exp in EXPONENTS.items()
    }
    return {
        "scale": scale,
        "affinity": 0.5,
        "users": round(1_000_000 * scale),
        "items": round(200_000 * scale),
        "nodes": round(1_304_044 * scale),
        "relationships": rels,
        "load": {"seconds": LOAD_SECONDS[i], "neo4j_peak_rss_mib": 4542.0},
        "load_average_start": "1.96 0.84 0.32 4/188 3187",
        "pipeline": {
            "run_id": f"v20261207-0000{i}0-abcdef",
            "config": {"model.name": "dpgcn", "optim.epochs": 1, "device": "cpu"},
            "stages": stages,
            "pipeline_s": sum(s["seconds"] for s in stages.values()) + 5.0,
            "state": "SUCCESS",
            "train_metrics": {"best_epoch": 1, "last_epoch": 1, "test_ndcg@10": 0.14},
            "serve": {
                "ready_s": 5.0 * 2**i,
                "api_peak_rss_mib": 700.0 * 2**i,
                "rps": 1779.65,
                "p50_ms": 15.0,
                "p99_ms": 63.0,
                "errors": 0,
            },
            "affinity": 0.5,
            "oracle_ndcg@10": 0.23,
            "ndcg@10_vs_oracle": 0.14 / 0.23,
            "oracle_ranked_users": 5000.0,
        },
        "load_average_end": "1.55 1.06 0.47 2/181 3229",
    }


def write_runs(tmp_path: Path, runs: list[dict[str, Any]]) -> list[Path]:
    files = []
    for i, run in reversed(list(enumerate(runs))):  # out of order: the summary sorts them
        files.append(tmp_path / f"scale_{i}.json")
        files[-1].write_text(json.dumps(run, indent=2))
    return files


def table_slopes(out: str) -> dict[str, str]:
    """The last column of each table row, by stage."""
    rows = (line.strip("|").split("|") for line in out.splitlines() if line.startswith("| "))
    return {cells[0].strip(): cells[-1].strip() for cells in rows if cells[0].strip() != "stage"}


def test_loglog_slope_by_hand() -> None:
    assert scale_summary.loglog_slope([(1, 10), (2, 20), (4, 80)]) == pytest.approx(1.5)
    assert scale_summary.loglog_slope([(1e6, 3.0), (1e7, 3.0)]) == pytest.approx(0.0)
    assert scale_summary.loglog_slope([(1e6, 3.0)]) is None
    assert scale_summary.loglog_slope([(1e6, 3.0), (2e6, 0.0)]) is None


def test_summarize_and_plot_cli(tmp_path: Path) -> None:
    files = write_runs(tmp_path, [fake_run(i, s) for i, s in enumerate(SCALES)])
    svg = tmp_path / "figs" / "scale.svg"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "scale_run.py"), "--summarize"]
        + [str(f) for f in files]
        + ["--plot", str(svg)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    slopes = table_slopes(done.stdout)
    expected = {step: f"{exp:.2f}" for step, exp in EXPONENTS.items()}
    expected |= {"load": "1.50", scale_summary.SERVE: "1.00"}
    assert slopes == expected
    assert list(slopes) == ["load", *EXPONENTS, scale_summary.SERVE]  # pipeline order
    header = done.stdout.splitlines()[0]
    assert "1/4 (4,975,000 rels)" in header and "full (19,900,000 rels)" in header
    assert "0.609 x oracle" in done.stdout

    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    for stage, slope in expected.items():  # the legend's slopes are the table's
        assert f"{stage} (slope {slope})" in text, stage
    # the RSS panel: the worker's peak grows as scale ** 0.5, Neo4j's is flat, the API's doubles
    for series, slope in (("worker", "0.50"), ("Neo4j", "0.00"), ("API", "1.00")):
        assert f"{series} (slope {slope})" in text
    # the slope-1 line through the smallest run's total
    total = LOAD_SECONDS[0] + 5.0 + sum(1e-4 * 4_975_000**e for e in EXPONENTS.values())
    assert f"smallest run's total ({total:,.0f} s)" in text


def test_a_stage_missing_from_a_run_is_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = [fake_run(i, s) for i, s in enumerate(SCALES)]
    failed = copy.deepcopy(runs[2])
    del failed["pipeline"]["stages"]["segments"]  # as the full-scale run whose segments failed
    del failed["pipeline"]["serve"]
    files = write_runs(tmp_path, [runs[0], runs[1], failed])
    svg = tmp_path / "scale.svg"
    slopes = scale_summary.summarize(files, svg)
    assert slopes["segments"] == pytest.approx(0.75)  # from the two runs that have it
    assert slopes["train"] == pytest.approx(1.2)
    assert slopes[scale_summary.SERVE] == pytest.approx(1.0)
    row = next(line for line in capsys.readouterr().out.splitlines() if "| segments |" in line)
    assert row.split("|")[4].strip() == "–" and row.split("|")[-2].strip() == "0.75"
    assert svg.stat().st_size > 0 and "segments (slope 0.75)" in svg.read_text()
