"""Segments of a trained model in the real graph (task, CLI, versioning) and every statement of
the ``cypher/analytics``, ``cypher/quality`` and ``cypher/segments`` library run against it.

The outputs of the library statements are written to ``$DPGCN_HOME/artifacts/cypher-examples.md``
(the source of the example outputs in docs/cypher.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from neo4j import Driver

from dpgcn.settings import get_settings
from graphstore import segments, writeback
from graphstore.driver import execute
from tests.integration.conftest import run_cli
from training.segments import SegmentConfig
from workers.segment_tasks import segment_version

pytestmark = pytest.mark.integration

OTHER = "vseg-test-other"
#: Outputs of statements run by earlier tests, added to the example file.
EXAMPLES: dict[str, list[dict[str, Any]]] = {}
NEXT = "vseg-test-next"


def _count(driver: Driver, cypher: str, **params: Any) -> int:
    return int(driver.execute_query(cypher, params).records[0][0])


@pytest.fixture(scope="module")
def segmented(driver: Driver, trained_model: str) -> Iterator[str]:
    """The trained version with its segments computed by the task (called directly)."""
    from workers.segment_tasks import compute_segments

    assert compute_segments(None, trained_model) == trained_model
    yield trained_model
    driver.execute_query(
        "MATCH (m:Model) WHERE m.version IN $v DETACH DELETE m", {"v": [OTHER, NEXT]}
    )
    segments.prune_segments(driver)


def test_task_writes_segments_of_the_version(driver: Driver, segmented: str) -> None:
    record = writeback.get_model(driver, segmented)
    assert record is not None and record["segments"] >= 2
    k = int(record["segments"])
    rows = segments.list_segments(driver, segmented)
    assert [r["id"] for r in rows] == [f"{segmented}:{n}" for n in range(k)]
    assert all(r["name"] and r["size"] > 0 for r in rows)
    assert len({r["name"] for r in rows}) == k, "segment names are unique"
    embedded = _count(
        driver,
        "MATCH (u:User) WHERE u.embedding_a_version = $v OR u.embedding_b_version = $v "
        "RETURN count(u)",
        v=segmented,
    )
    members = _count(
        driver,
        "MATCH (u:User)-[:IN_SEGMENT]->(s:Segment {model_version: $v}) RETURN count(DISTINCT u)",
        v=segmented,
    )
    links = _count(
        driver,
        "MATCH (:User)-[r:IN_SEGMENT]->(s:Segment {model_version: $v}) "
        "WHERE 0 <= r.score <= 1 RETURN count(r)",
        v=segmented,
    )
    assert embedded == members == links == sum(r["size"] for r in rows)
    lifts = driver.execute_query(
        "MATCH (s:Segment {model_version: $v})-[a:AFFINITY]->(t) "
        "RETURN labels(t)[0] AS label, a.lift AS lift",
        {"v": segmented},
    ).records
    assert lifts and all(r["lift"] > 1 for r in lifts)
    assert {r["label"] for r in lifts} <= {"Category", "Term"}


def test_task_is_idempotent(driver: Driver, segmented: str) -> None:
    from workers.segment_tasks import compute_segments

    before = driver.execute_query(
        "MATCH (s:Segment {model_version: $v}) RETURN collect(s.created_at) AS t", {"v": segmented}
    ).records[0]["t"]
    compute_segments(None, segmented)
    after = driver.execute_query(
        "MATCH (s:Segment {model_version: $v}) RETURN collect(s.created_at) AS t", {"v": segmented}
    ).records[0]["t"]
    assert sorted(before) == sorted(after)


def test_cli_list_compute_and_plot(segmented: str, tmp_path: Path) -> None:
    listed = json.loads(run_cli("segments", "list", "--json").stdout)
    assert listed and listed[0]["id"] == f"{segmented}:0"
    out = run_cli("segments", "compute").stdout
    assert "already has" in out
    out = run_cli("segments", "compute", "--force", "--k", "3").stdout
    assert "3 segments (fixed" in out
    assert len(json.loads(run_cli("segments", "list", "--json").stdout)) == 3
    run_cli("segments", "plot", "--out", str(tmp_path))
    for name in ("segments-map.png", "segments-profile.png"):
        png = tmp_path / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    bad = run_cli("segments", "list", "--version", "nope", check=False)
    assert bad.returncode != 0 and "no segments" in bad.stderr


def test_cli_refuses_unknown_versions(segmented: str) -> None:
    bad = run_cli("segments", "compute", "--version", "v-missing", check=False)
    assert bad.returncode == 1 and "no model version 'v-missing'" in bad.stderr


def _second_version(driver: Driver, base: str, version: str) -> None:
    """Another complete version whose user vectors are the base version's plus noise."""
    ids, vectors = segments.read_user_vectors(driver, base)
    rng = np.random.default_rng(0)
    noisy = vectors + rng.normal(0, 0.05, vectors.shape).astype(np.float32)
    writeback.begin_version(driver, version, vectors.shape[1], "test")
    n = writeback.write_embeddings(driver, version, "User", ids, noisy)
    writeback.complete_version(driver, version, {"User": n}, {})


def test_versions_overlap_migrate_and_are_pruned(driver: Driver, segmented: str) -> None:
    _second_version(driver, segmented, OTHER)
    summary = segment_version(driver, OTHER, config=SegmentConfig(k=3))
    assert summary.k == 3 and not summary.skipped
    params = {"from_version": segmented, "to_version": OTHER}
    overlap = [dict(r) for r in execute(driver, "segments/get_segment_overlap", params, read=True)]
    EXAMPLES["segments/get_segment_overlap"] = overlap
    assert overlap and all(0 < r["jaccard"] <= 1 for r in overlap)
    migration = [
        dict(r) for r in execute(driver, "segments/get_segment_migration", params, read=True)
    ]
    EXAMPLES["segments/get_segment_migration"] = migration
    by_origin: dict[str, float] = {}
    for r in migration:
        by_origin[r["from_segment"]] = by_origin.get(r["from_segment"], 0) + r["share"]
    assert by_origin and all(abs(s - 1) < 1e-3 for s in by_origin.values())
    # A third version takes the same slot: OTHER is superseded, its segments go; the active
    # version's stay.
    writeback.begin_version(driver, NEXT, 4, "test")
    assert segments.prune_segments(driver) == 3
    left = driver.execute_query(
        "MATCH (s:Segment) RETURN collect(DISTINCT s.model_version) AS v"
    ).records[0]["v"]
    assert left == [segmented]


# ------------------------------------------------------------------ the Cypher library

PLANTED = {
    "orphan_item": "dq-orphan-item",
    "idle_user": "dq-idle-user",
    "dup_queries": ["dq zeta omega", "dq omega zeta"],
}


@pytest.fixture(scope="module")
def quality_issues(driver: Driver, segmented: str) -> Iterator[None]:
    """Data-quality problems planted for the checks to find (removed afterwards)."""
    driver.execute_query(
        "CREATE (:Item {id: $item, title: 'Orphan'}), (:User {id: $user})\n"
        "MERGE (a:Term {id: 'dqzeta'}) MERGE (b:Term {id: 'dqomega'})\n"
        "WITH a, b UNWIND $queries AS q\n"
        "CREATE (n:Query {id: q, text: q}) CREATE (n)-[:HAS_TERM]->(a), (n)-[:HAS_TERM]->(b)",
        {
            "item": PLANTED["orphan_item"],
            "user": PLANTED["idle_user"],
            "queries": PLANTED["dup_queries"],
        },
    )
    yield
    driver.execute_query(
        "MATCH (n) WHERE n.id IN $ids DETACH DELETE n",
        {
            "ids": [
                PLANTED["orphan_item"],
                PLANTED["idle_user"],
                "dqzeta",
                "dqomega",
                *PLANTED["dup_queries"],
            ]
        },
    )


def _examples(version: str) -> dict[str, dict[str, Any]]:
    return {
        "analytics/get_user_recommendations": {"user_id": "u0", "k": 5},
        "analytics/get_similar_items": {"item_id": "i0", "k": 5},
        "analytics/get_query_suggestions": {"user_id": "u0", "k": 5},
        "analytics/get_category_targets": {"category_id": "c0", "k": 5},
        "analytics/get_graph_statistics": {},
        "analytics/get_user_activity": {},
        "quality/get_orphan_nodes": {"sample": 5},
        "quality/get_duplicate_queries": {"limit": 5},
        "quality/get_users_without_events": {"limit": 5},
        "quality/get_items_without_category": {"limit": 5},
        "quality/get_missing_embeddings": {},
        "segments/list_segments": {"version": version},
        "segments/get_segment_profile": {"segment_id": f"{version}:0"},
        "segments/get_segment_graph": {"segment_id": f"{version}:0", "members": 5},
        "segments/get_user_segment": {"user_id": "u0"},
        "segments/get_segment_activity": {"version": version},
        "segments/get_segment_assignments": {"version": version},
        "segments/get_category_lift": {"version": version, "min_count": 3},
        "segments/get_term_lift": {"version": version, "min_count": 3},
        "segments/get_query_lift": {"version": version, "min_count": 3},
        "segments/get_item_lift": {"version": version, "min_count": 3},
    }


def _run(driver: Driver, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(r) for r in execute(driver, name, params, read=True)]


def test_library_statements_answer(driver: Driver, segmented: str, quality_issues: None) -> None:
    version = segmented
    results = {name: _run(driver, name, p) for name, p in _examples(version).items()}

    recs = results["analytics/get_user_recommendations"]
    assert len(recs) == 5 and recs == sorted(recs, key=lambda r: -r["score"])
    seen = {
        r["id"]
        for r in driver.execute_query(
            "MATCH (:User {id: 'u0'})-[:VIEWED|CLICKED|PURCHASED|RATED]->(i) RETURN i.id AS id"
        ).records
    }
    assert not seen & {r["id"] for r in recs}
    similar = results["analytics/get_similar_items"]
    assert len(similar) == 5 and "i0" not in {r["id"] for r in similar}
    suggestions = results["analytics/get_query_suggestions"]
    assert suggestions and all(r["text"] for r in suggestions)
    targets = results["analytics/get_category_targets"]
    assert len(targets) == 5 and all(r["segment"] for r in targets)
    stats = {(r["kind"], r["name"]): r["count"] for r in results["analytics/get_graph_statistics"]}
    assert stats[("node", "User")] == 301 and stats[("relationship", "IN_SEGMENT")] == 300
    activity = results["analytics/get_user_activity"][0]
    assert activity["users"] == 301 and activity["max"] >= activity["median"] > 0

    orphans = {r["label"]: r for r in results["quality/get_orphan_nodes"]}
    assert PLANTED["orphan_item"] in orphans["Item"]["sample"]
    assert PLANTED["idle_user"] in orphans["User"]["sample"]
    dups = results["quality/get_duplicate_queries"]
    assert sorted(PLANTED["dup_queries"]) in [sorted(r["queries"]) for r in dups]
    idle = results["quality/get_users_without_events"][0]
    assert idle["users"] == 1 and idle["sample"] == [PLANTED["idle_user"]]
    assert PLANTED["orphan_item"] in results["quality/get_items_without_category"][0]["sample"]
    missing = {r["label"]: r["missing"] for r in results["quality/get_missing_embeddings"]}
    assert missing["User"] == 1 and missing["Item"] == 1  # the planted ones

    listed = results["segments/list_segments"]
    profile = results["segments/get_segment_profile"][0]
    assert profile["name"] == listed[0]["name"] and profile["size"] == listed[0]["size"]
    assert profile["categories"] and profile["categories"][0]["lift"] > 1
    graph = results["segments/get_segment_graph"]
    assert graph and all(r["p"].start_node["id"] for r in graph)
    mine = results["segments/get_user_segment"][0]
    assert mine["version"] == version and mine["segment"].startswith(version)
    assert len(results["segments/get_segment_assignments"]) == 300
    for lift in ("category", "term", "query", "item"):
        rows = results[f"segments/get_{lift}_lift"]
        assert rows and all(r["count"] >= 3 and r["lift"] > 0 for r in rows)
    _write_examples(version, {**results, **EXAMPLES})


def _write_examples(version: str, results: dict[str, list[dict[str, Any]]]) -> None:
    """The first rows of each statement as markdown (for docs/cypher.md)."""
    out = get_settings().artifacts_dir / "cypher-examples.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# Example outputs (model {version})", ""]
    for name, rows in results.items():
        lines += [f"## {name}", "", "```"]
        for row in rows[:4]:
            row_json = json.dumps(
                {k: _plain(v) for k, v in row.items()}, default=str, ensure_ascii=False
            )
            lines.append(row_json[:400])
        if len(rows) > 4:
            lines.append(f"... ({len(rows)} rows)")
        lines += ["```", ""]
    out.write_text("\n".join(lines))


def _plain(value: Any) -> Any:
    if hasattr(value, "start_node"):
        return f"path ({value.start_node['id']})-…-({value.end_node['id']}), {len(value)} hop(s)"
    if isinstance(value, float):
        return round(value, 4)
    return value
