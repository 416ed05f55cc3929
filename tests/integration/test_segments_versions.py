"""`:Segment` means "segment of the active model version": the acceptance query
``MATCH (s:Segment) RETURN s.name, s.size ORDER BY s.size DESC`` returns exactly the active
version's segments, whose sizes add up to the users with embeddings of that version, through
segmentation before activation, activation of a new version, rollback and recomputation.
Segments of every other version are ``:ArchivedSegment`` with the same properties."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from neo4j import Driver

from graphstore import ingest, segments, writeback
from graphstore.driver import execute
from graphstore.sources import synthetic
from tests.integration.helpers import SMALL
from training.segments import SegmentConfig
from workers.segment_tasks import segment_version

pytestmark = pytest.mark.integration

ACCEPTANCE = "MATCH (s:Segment) RETURN s.name AS name, s.size AS size ORDER BY s.size DESC"
V1, V2, V3 = "vseg-ver-1", "vseg-ver-2", "vseg-ver-3"


def _plain(driver: Driver) -> list[dict[str, Any]]:
    return [dict(r) for r in driver.execute_query(ACCEPTANCE).records]


def _archived(driver: Driver) -> dict[str, list[dict[str, Any]]]:
    rows = driver.execute_query(
        "MATCH (s:ArchivedSegment) RETURN s.model_version AS v, s{.*} AS props ORDER BY s.id"
    ).records
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["v"], []).append(dict(r["props"]))
    return out


def _with_embeddings(driver: Driver, version: str) -> int:
    return int(
        driver.execute_query(
            "MATCH (u:User) WHERE u.embedding_a_version = $v OR u.embedding_b_version = $v "
            "RETURN count(u) AS n",
            {"v": version},
        ).records[0]["n"]
    )


def _version(driver: Driver, version: str, ids: list[str], seed: int) -> None:
    """A complete version with clustered random user vectors (four blobs)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (4, 8))
    vectors = (centres[np.arange(len(ids)) % 4] + rng.normal(0, 0.1, (len(ids), 8))).astype(
        np.float32
    )
    writeback.begin_version(driver, version, 8, "test")
    n = writeback.write_embeddings(driver, version, "User", ids, vectors)
    writeback.complete_version(driver, version, {"User": n}, {})


def _assert_active(driver: Driver, version: str, k: int) -> list[dict[str, Any]]:
    rows = _plain(driver)
    assert len(rows) == k, rows
    assert all(r["name"] for r in rows)
    assert sum(r["size"] for r in rows) == _with_embeddings(driver, version)
    versions = driver.execute_query(
        "MATCH (s:Segment) RETURN collect(DISTINCT s.model_version) AS v"
    ).records[0]["v"]
    assert versions == [version]
    both = driver.execute_query("MATCH (s:Segment:ArchivedSegment) RETURN count(s) AS n")
    assert both.records[0]["n"] == 0, "a segment is either active or archived"
    return rows


def test_plain_query_returns_the_active_versions_segments(empty_graph: Driver) -> None:
    driver = empty_graph
    source, _ = synthetic.generate(SMALL)
    ingest.load_source(driver, source)
    ids = sorted(u["id"] for u in source.users)

    # Version 1, segmented before activation: nothing is :Segment yet.
    _version(driver, V1, ids, seed=1)
    first = segment_version(driver, V1, config=SegmentConfig(k=3))
    assert first.k == 3 and _plain(driver) == []
    assert len(_archived(driver)[V1]) == 3
    assert not any(r["active"] for r in segments.list_segments(driver, V1))

    active = writeback.activate_version(driver, V1)
    assert active.version == V1
    v1_rows = _assert_active(driver, V1, 3)
    assert sum(r["size"] for r in v1_rows) == len(ids)
    assert all(r["active"] for r in segments.list_segments(driver, V1))

    # Version 2 (fewer users with embeddings), segmented while version 1 is served: the plain
    # query does not see it.
    _version(driver, V2, ids[:250], seed=2)
    segment_version(driver, V2, config=SegmentConfig(k=4))
    assert _plain(driver) == v1_rows
    assert len(_archived(driver)[V2]) == 4

    # Activation swaps the labels in the same transaction: the old version is archived with
    # the same properties.
    v1_props = sorted(
        (dict(r["p"]) for r in driver.execute_query("MATCH (s:Segment) RETURN s{.*} AS p").records),
        key=lambda p: str(p["id"]),
    )
    writeback.activate_version(driver, V2)
    v2_rows = _assert_active(driver, V2, 4)
    assert sum(r["size"] for r in v2_rows) == 250
    archived = _archived(driver)
    assert set(archived) == {V1}
    assert archived[V1] == v1_props, "archived segments keep every property"
    # Reading a version's segments works whichever label they carry.
    assert [r["id"] for r in segments.list_segments(driver, V1)] == [f"{V1}:{n}" for n in range(3)]
    assert len(segments.get_assignments(driver, V1)) == len(ids)
    migration = execute(
        driver,
        "segments/get_segment_migration",
        {"from_version": V1, "to_version": V2},
        read=True,
    )
    assert sum(r["users"] for r in migration) == len(ids)

    # Activating the active version again changes nothing.
    writeback.activate_version(driver, V2)
    assert _plain(driver) == v2_rows

    # Rollback: version 1 is served again, its segments are :Segment again.
    writeback.activate_version(driver, V1)
    assert _assert_active(driver, V1, 3) == v1_rows
    assert set(_archived(driver)) == {V2}

    # Recomputing the active version keeps the plain query on it (new segments promoted when
    # they are complete).
    again = segment_version(driver, V1, config=SegmentConfig(k=2), force=True)
    assert again.k == 2 and not again.skipped
    _assert_active(driver, V1, 2)
    assert set(_archived(driver)) == {V2}

    # A third version takes version 2's slot: version 2 is superseded and its archived
    # segments are pruned; the active ones stay.
    writeback.begin_version(driver, V3, 8, "test")
    assert segments.prune_segments(driver) == 4
    assert _archived(driver) == {}
    _assert_active(driver, V1, 2)
