"""The API benchmark's own set-up against the real services, at a tiny size: a benchmark
whose set-up no longer matches the code it measures fails here, not at measuring time."""

from __future__ import annotations

import pytest
from neo4j import Driver

from bench import bench_api
from graphstore import model, policies, writeback

pytestmark = pytest.mark.integration


def test_bench_api_loads_a_servable_model(empty_graph: Driver) -> None:
    users, items, dim = 30, 200, 8
    version = bench_api.load_graph(users, items, dim, events=2, seed=1)
    active = writeback.get_active(empty_graph)
    assert active is not None and active.version == version
    prop = model.embedding_property(active.slot)
    for label, n in ((model.USER, users), (model.ITEM, items)):
        records, _, _ = empty_graph.execute_query(
            f"MATCH (n:{label}) WHERE n.{prop}_version = $v RETURN count(n) AS c, "
            f"min(size(n.{prop})) AS lo, max(size(n.{prop})) AS hi",
            v=version,
        )
        assert (records[0]["c"], records[0]["lo"], records[0]["hi"]) == (n, dim, dim), label
    assert policies.get_latest_policy(empty_graph, version) is not None
    # loaded already: the second call changes nothing
    assert bench_api.load_graph(users, items, dim, events=2, seed=1) == version


def test_bench_api_asgi_profile_runs(capsys: pytest.CaptureFixture[str]) -> None:
    bench_api.asgi_profile(64, 4)
    out = capsys.readouterr().out
    for row in ("hello-world route", "explain=false", "explanations (README)"):
        assert row in out
