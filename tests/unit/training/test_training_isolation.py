"""training never imports neo4j, fastapi or celery; inference scores without torch."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_training_never_imports_services() -> None:
    out = _run(
        """
        import importlib, pkgutil, sys
        import training
        for m in pkgutil.walk_packages(training.__path__, "training."):
            importlib.import_module(m.name)
        bad = sorted(m for m in sys.modules if m.split(".")[0] in {"neo4j", "fastapi", "celery"})
        print("BAD", bad)
        print("COUNT", len([m for m in sys.modules if m.startswith("training.")]))
        """
    )
    assert "BAD []" in out
    count = int(out.split("COUNT")[1].split()[0])
    assert count > 20  # the walk really imported the package


def test_inference_imports_without_torch() -> None:
    out = _run(
        """
        import sys
        import training.inference
        print("TORCH", "torch" in sys.modules)
        """
    )
    assert "TORCH False" in out


def test_graphstore_never_imports_training_or_torch() -> None:
    """The dependency direction: graphstore talks to Neo4j only; orchestration that needs both
    sides (training + graph writes) lives in workers/ or the CLI."""
    out = _run(
        """
        import importlib, pkgutil, sys
        import graphstore
        for m in pkgutil.walk_packages(graphstore.__path__, "graphstore."):
            importlib.import_module(m.name)
        bad = sorted(m for m in sys.modules if m.split(".")[0] in {"training", "torch", "api"})
        print("BAD", bad)
        """
    )
    assert "BAD []" in out
