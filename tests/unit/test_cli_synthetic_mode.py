"""``--mode`` of ``dpgcn load synthetic`` and ``dpgcn evaluate --dataset synthetic``: the value
reaches the generator's spec, the cold mode is its own dataset, a bad value is refused."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, get_args

import pytest
from typer.testing import CliRunner

from dpgcn import cli_evaluate, cli_load
from dpgcn.cli import app
from graphstore.sources import synthetic
from graphstore.sources.synthetic import SyntheticSpec


@pytest.fixture
def specs(monkeypatch: pytest.MonkeyPatch) -> list[SyntheticSpec]:
    """The specs the generator is called with (it still generates)."""
    seen: list[SyntheticSpec] = []
    real = synthetic.generate

    def generate(spec: SyntheticSpec) -> Any:
        seen.append(spec)
        return real(spec)

    monkeypatch.setattr(synthetic, "generate", generate)
    return seen


@pytest.fixture
def no_ingest(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    loaded: list[Any] = []
    monkeypatch.setattr(cli_load, "ingest_source", lambda source, *a, **k: loaded.append(source))
    return loaded


def test_the_cli_modes_are_the_generators() -> None:
    assert get_args(cli_load.SyntheticMode) == synthetic.MODES


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], SyntheticSpec(users=40, items=20)),
        (["--mode", "default"], SyntheticSpec(users=40, items=20)),
        (["--mode", "cold"], SyntheticSpec.cold(users=40, items=20)),
        (
            ["--mode", "cold", "--events-per-user", "9"],
            SyntheticSpec.cold(users=40, items=20, events_per_user=9.0),
        ),
    ],
)
def test_load_synthetic_mode_reaches_the_spec(
    args: list[str], expected: SyntheticSpec, specs: list[SyntheticSpec], no_ingest: list[Any]
) -> None:
    result = CliRunner().invoke(app, ["load", "synthetic", "--users", "40", "--items", "20", *args])
    assert result.exit_code == 0, result.output
    assert specs == [expected]
    assert len(no_ingest) == 1


def test_cold_mode_keeps_its_own_activity_unless_asked() -> None:
    assert SyntheticSpec.cold().events_per_user == 6.0
    assert synthetic.spec_for("cold", users=40).events_per_user == 6.0
    assert synthetic.spec_for("default", users=40).events_per_user == 20.0
    with pytest.raises(ValueError, match="unknown synthetic mode 'warm'; valid: default, cold"):
        synthetic.spec_for("warm")


@pytest.mark.parametrize("command", [["load", "synthetic"], ["evaluate", "--export-only"]])
def test_a_bad_mode_is_refused_with_the_valid_ones(
    command: list[str], specs: list[SyntheticSpec], no_ingest: list[Any]
) -> None:
    result = CliRunner().invoke(app, [*command, "--mode", "warm"])
    assert result.exit_code == 2
    assert "--mode" in result.output
    assert "'warm'" in result.output
    assert "default" in result.output and "cold" in result.output
    assert specs == [] and no_ingest == []


def test_mode_is_refused_for_a_real_dataset(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["evaluate", "--dataset", "movielens", "--mode", "cold", "--export-dir", str(tmp_path)],
    )
    assert result.exit_code == 2
    assert "--mode cold is a mode of the synthetic generator" in result.output
    assert not any(tmp_path.iterdir())


def test_evaluate_cold_mode_exports_the_cold_dataset_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, specs: list[SyntheticSpec]
) -> None:
    monkeypatch.setattr(
        cli_evaluate, "get_settings", lambda: SimpleNamespace(artifacts_dir=tmp_path)
    )
    args = ["evaluate", "--users", "60", "--items", "30", "--data-seed", "2", "--export-only"]
    result = CliRunner().invoke(app, [*args, "--mode", "cold"])
    assert result.exit_code == 0, result.output
    assert specs == [SyntheticSpec.cold(users=60, items=30, seed=2)]
    cold = tmp_path / "evaluate" / "synthetic-cold" / "export"
    assert (cold / "graph.npz").is_file() and (cold / "oracle.npz").is_file()
    assert not (tmp_path / "evaluate" / "synthetic").exists()

    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert specs[1] == SyntheticSpec(users=60, items=30, seed=2)
    assert (tmp_path / "evaluate" / "synthetic" / "export" / "graph.npz").is_file()
