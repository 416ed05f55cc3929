"""The sources (loaders, synthetic generators, text) never import the Neo4j driver."""

from __future__ import annotations

from tests.unit.fresh_python import run_fresh


def test_sources_never_import_neo4j() -> None:
    out = run_fresh(
        """
        import importlib, pkgutil, sys
        import graphstore.sources
        for m in pkgutil.walk_packages(graphstore.sources.__path__, "graphstore.sources."):
            importlib.import_module(m.name)
        walked = sorted(m for m in sys.modules if m.startswith("graphstore.sources."))
        bad = sorted({m.split(".")[0] for m in sys.modules} & {"neo4j", "torch", "redis"})
        print("WALKED", len(walked))
        print("BAD", bad)
        """
    )
    assert "BAD []" in out, out
    walked = int(out.split("WALKED")[1].split()[0])
    assert walked >= 10  # the walk really imported the loaders and generators
