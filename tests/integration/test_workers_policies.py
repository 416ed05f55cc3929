"""Policy versions in the graph (graphstore.policies) against the real Neo4j."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from neo4j import Driver

from graphstore import policies, writeback
from graphstore.errors import VersionError
from graphstore.schema import apply_schema


@pytest.fixture
def model_version(empty_graph: Driver) -> str:
    apply_schema(empty_graph)
    writeback.begin_version(empty_graph, "vpolicy1", 8, "dpgcn", run_id="vpolicy1")
    writeback.complete_version(empty_graph, "vpolicy1", {"User": 0, "Item": 0}, {})
    return "vpolicy1"


def test_versions_count_up_and_latest_is_returned(empty_graph: Driver, model_version: str) -> None:
    assert policies.get_latest_policy(empty_graph, model_version) is None
    v1 = policies.save_policy(empty_graph, model_version, b"first", {"updates": 0})
    v2 = policies.save_policy(
        empty_graph, model_version, b"\x00second\xff", {"updates": 12, "reward_mean": 0.25}
    )
    assert (v1, v2) == (1, 2)
    latest = policies.get_latest_policy(empty_graph, model_version)
    assert latest is not None
    assert (latest.model_version, latest.version, latest.actor) == (
        model_version,
        2,
        b"\x00second\xff",
    )
    assert latest.created_at.startswith("20")
    listed = policies.list_policies(empty_graph, model_version)
    assert [p["version"] for p in listed] == [2, 1]
    assert listed[0]["reward_mean"] == 0.25 and "actor" not in listed[0]
    linked = empty_graph.execute_query(
        "MATCH (p:Policy)-[:POLICY_OF]->(m:Model {version: $v}) RETURN count(p) AS n",
        v=model_version,
    ).records[0]["n"]
    assert linked == 2


def test_concurrent_saves_get_distinct_consecutive_versions(
    empty_graph: Driver, model_version: str
) -> None:
    with ThreadPoolExecutor(max_workers=6) as pool:
        versions = list(
            pool.map(
                lambda k: policies.save_policy(empty_graph, model_version, bytes([k + 1]), {}),
                range(12),
            )
        )
    assert sorted(versions) == list(range(1, 13))


def test_unknown_model_and_bad_input_are_refused(empty_graph: Driver, model_version: str) -> None:
    with pytest.raises(VersionError, match="no model version"):
        policies.save_policy(empty_graph, "nope", b"x", {})
    with pytest.raises(ValueError, match="non-empty bytes"):
        policies.save_policy(empty_graph, model_version, b"", {})
    with pytest.raises(ValueError, match="reserved"):
        policies.save_policy(empty_graph, model_version, b"x", {"version": 9})
    with pytest.raises(ValueError, match="number, text or bool"):
        policies.save_policy(empty_graph, model_version, b"x", {"nested": {"a": 1}})
    assert policies.get_latest_policy(empty_graph, "nope") is None
