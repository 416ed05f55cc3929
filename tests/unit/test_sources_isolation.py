"""The sources (loaders, synthetic generators, text) never import the Neo4j driver."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_sources_never_import_neo4j() -> None:
    code = """
        import importlib, pkgutil, sys
        import graphstore.sources
        for m in pkgutil.walk_packages(graphstore.sources.__path__, "graphstore.sources."):
            importlib.import_module(m.name)
        walked = sorted(m for m in sys.modules if m.startswith("graphstore.sources."))
        bad = sorted({m.split(".")[0] for m in sys.modules} & {"neo4j", "torch", "redis"})
        print("WALKED", len(walked))
        print("BAD", bad)
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "BAD []" in result.stdout, result.stdout
    walked = int(result.stdout.split("WALKED")[1].split()[0])
    assert walked >= 10  # the walk really imported the loaders and generators
