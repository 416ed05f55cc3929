"""Every `dpgcn` command and sub-command answers --help."""

from __future__ import annotations

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
