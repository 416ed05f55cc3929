"""Export variants (k-hop, segment, time window): the exported edges equal the edges Neo4j
holds among the selected nodes, the selection is in meta.json, and users without consent
are never exported."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from neo4j import Driver

from graphstore import ingest, model
from graphstore.driver import execute
from graphstore.export import export_subgraph
from graphstore.sources.synthetic import START_TS, SyntheticSpec, generate
from tests.integration.conftest import run_cli

pytestmark = pytest.mark.integration

Edge = tuple[str, str, str, str, str]  # (src label, type, dst label, src id, dst id)
NO_CONSENT = "u3"


@pytest.fixture(scope="module")
def graph(services_up: None, driver: Driver) -> dict[str, Any]:
    """A small synthetic shop, one user without consent, and a segment of ten users; returns
    every relationship of the graph (with ts) and each node's label, read back from Neo4j."""
    from graphstore.driver import delete_all

    delete_all(driver)
    source, _ = generate(SyntheticSpec(users=60, items=40, events_per_user=6, seed=11))
    ingest.load_source(driver, source)
    execute(
        driver,
        "ingest/merge_users",
        {
            "rows": [
                {"id": NO_CONSENT, "age": 30, "gender": "F", "occupation": "x", "consent": False}
            ]
        },
    )
    driver.execute_query(
        "MERGE (s:Segment {id: 'seg-test'}) WITH s "
        "MATCH (u:User) WHERE u.id IN $ids MERGE (u)-[:IN_SEGMENT {score: 1.0}]->(s)",
        ids=[f"u{k}" for k in range(10)],
    )
    records = driver.execute_query(
        "MATCH (s)-[r]->(t) WHERE type(r) <> 'IN_SEGMENT' "
        "RETURN labels(s)[0] AS sl, type(r) AS rt, labels(t)[0] AS tl, s.id AS s, t.id AS t, "
        "r.ts AS ts"
    ).records
    edges = {(r["sl"], r["rt"], r["tl"], r["s"], r["t"]): r["ts"] for r in records}
    return {"edges": edges}


def exported(path: Path) -> tuple[dict[str, set[str]], set[Edge], dict[str, Any]]:
    nodes: dict[str, set[str]] = {}
    edges: set[Edge] = set()
    with np.load(path / "graph.npz", allow_pickle=False) as z:
        for label in model.NODE_LABELS:
            nodes[label] = {str(i) for i in z[f"{label}.ids"]}
        for key in z.files:
            if key.endswith(".edge_index"):
                name = key[: -len(".edge_index")]
                src, rel, dst = name.split("__")
                ei = z[key]
                s_ids, t_ids = z[f"{src}.ids"], z[f"{dst}.ids"]
                edges |= {
                    (src, rel, dst, str(s_ids[a]), str(t_ids[b]))
                    for a, b in zip(ei[0], ei[1], strict=True)
                }
    meta = json.loads((path / "meta.json").read_text())
    return nodes, edges, meta


def induced(all_edges: dict[Edge, Any], nodes: dict[str, set[str]]) -> set[Edge]:
    return {e for e in all_edges if e[3] in nodes[e[0]] and e[4] in nodes[e[2]]}


def k_hop(all_edges: dict[Edge, Any], seeds: set[str], hops: int) -> dict[str, set[str]]:
    """Breadth-first in Python over the graph read back from Neo4j; never through NO_CONSENT."""
    adjacent: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    for sl, _, tl, s, t in all_edges:
        adjacent[(sl, s)].add((tl, t))
        adjacent[(tl, t)].add((sl, s))
    reached = {(model.USER, u) for u in seeds}
    frontier = set(reached)
    for _ in range(hops):
        frontier = {
            n for f in frontier for n in adjacent[f] if n != (model.USER, NO_CONSENT)
        } - reached
        reached |= frontier
    out: dict[str, set[str]] = {label: set() for label in model.NODE_LABELS}
    for label, nid in reached:
        out[label].add(nid)
    return out


@pytest.mark.parametrize("hops", [1, 2])
def test_k_hop_equals_the_graph(
    graph: dict[str, Any], driver: Driver, tmp_path: Path, hops: int
) -> None:
    seeds = {"u1", "u2", NO_CONSENT}
    summary = export_subgraph(driver, tmp_path / "x", users=sorted(seeds), hops=hops)
    nodes, edges, meta = exported(tmp_path / "x")
    expected_nodes = k_hop(graph["edges"], seeds - {NO_CONSENT}, hops)
    assert nodes == expected_nodes
    assert NO_CONSENT not in nodes[model.USER]
    assert edges == induced(graph["edges"], expected_nodes)
    assert summary["edges"] == len(edges) > 0
    assert meta["filters"] == {"scope": "k-hop", "users": sorted(seeds), "hops": hops}


def test_segment_equals_the_graph(graph: dict[str, Any], driver: Driver, tmp_path: Path) -> None:
    driver.execute_query(
        "MATCH (u:User {id: $u}), (s:Segment {id: 'seg-test'}) MERGE (u)-[:IN_SEGMENT]->(s)",
        u=NO_CONSENT,
    )
    export_subgraph(driver, tmp_path / "s", segment="seg-test")
    nodes, edges, meta = exported(tmp_path / "s")
    assert nodes[model.USER] == {f"u{k}" for k in range(10)} - {NO_CONSENT}
    catalogue = {
        label: {e[3] for e in graph["edges"] if e[0] == label}
        | {e[4] for e in graph["edges"] if e[2] == label}
        for label in (model.ITEM, model.QUERY, model.TERM, model.CATEGORY)
    }
    for label, ids in catalogue.items():
        assert ids <= nodes[label]
    assert edges == induced(graph["edges"], nodes)
    assert all(e[3] in nodes[model.USER] for e in edges if e[0] == model.USER)
    assert meta["filters"] == {"scope": "segment", "segment": "seg-test"}


def test_unknown_segment_is_a_clear_error(
    graph: dict[str, Any], driver: Driver, tmp_path: Path
) -> None:
    from graphstore.errors import GraphStoreError

    with pytest.raises(GraphStoreError, match="nothing to export"):
        export_subgraph(driver, tmp_path / "none", segment="no-such-segment")


@pytest.mark.parametrize("reader", ["procedure", "cypher"])
def test_time_window_equals_the_graph(
    graph: dict[str, Any], driver: Driver, tmp_path: Path, reader: str
) -> None:
    since, until = START_TS + 10 * 86400.0, START_TS + 30 * 86400.0
    summary = export_subgraph(driver, tmp_path / "w", since=since, until=until, reader=reader)
    assert summary["reader"] == reader
    nodes, edges, meta = exported(tmp_path / "w")
    in_window = {
        e
        for e, ts in graph["edges"].items()
        if e[0] != model.USER or (ts is not None and since <= ts < until)
    }
    in_window = {e for e in in_window if e[3] != NO_CONSENT}
    assert nodes[model.USER] == {e[3] for e in in_window if e[0] == model.USER}
    assert edges == {e for e in in_window if e[4] in nodes[e[2]] and e[3] in nodes[e[0]]}
    assert any(e[0] == model.USER for e in edges)
    assert meta["filters"] == {
        "scope": "all",
        "time_window": {"since": since, "until": until},
    }


def test_cli_export_k_hop_in_a_window(graph: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "cli"
    result = run_cli(
        "export",
        "--out",
        str(out),
        "--users",
        "u1,u2",
        "--hops",
        "1",
        "--since",
        "2023-11-14T22:13:20Z",
    )
    assert "exported" in result.stdout
    nodes, _, meta = exported(out)
    assert meta["filters"]["scope"] == "k-hop"
    assert meta["filters"]["time_window"] == {"since": START_TS, "until": None}
    assert nodes[model.USER] <= {"u1", "u2"}
    bad = run_cli("export", "--out", str(out), "--users", "u1", "--segment", "s", check=False)
    assert bad.returncode == 2 and "not both" in bad.stderr


def test_benchmark_statements(graph: dict[str, Any], driver: Driver) -> None:
    """The statements only the benchmarks use (count, one edge by its endpoints)."""
    members = driver.execute_query("MATCH ()-[r:IN_SEGMENT]->() RETURN count(r) AS n")
    assert execute(driver, "export/count_relationships", read=True)[0]["n"] == (
        len(graph["edges"]) + members.records[0]["n"]
    )
    (src, rel, dst, s, t), ts = next(
        (e, ts) for e, ts in graph["edges"].items() if e[1] == model.CLICKED
    )
    record = execute(driver, "export/get_edge", {"s": s, "t": t}, src=src, type=rel, dst=dst)[0]
    assert (record["s"], record["t"], record["ts"]) == (s, t, ts)
