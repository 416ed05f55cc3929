"""The project's Neo4j procedure (``dpgcn.export.relationshipColumns``, the Maven module
``graphstore/assets/plugin``) against the Cypher statement it replaces, on relationships with
every shape of property the graph holds: ts and weight, count only, nothing, integers."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from neo4j import Driver

from graphstore import model
from graphstore.driver import execute, has_procedure
from graphstore.export_columns import (
    COLUMNS_PROCEDURE,
    concat_columns,
    relationship_columns,
    type_columns,
)

pytestmark = pytest.mark.integration

TYPES = (model.CLICKED, model.VIEWED, model.LED_TO, model.HAS_TERM)


@pytest.fixture
def odd_graph(empty_graph: Driver) -> Driver:
    empty_graph.execute_query(
        """
        UNWIND range(0, 39) AS k
        CREATE (u:User {id: 'u' + k})
        CREATE (i:Item {id: 'i' + k})
        CREATE (q:Query {id: 'q' + k, text: 'q' + k})
        WITH u, i, q, k
        FOREACH (_ IN CASE WHEN k % 4 = 0 THEN [1] ELSE [] END |
            CREATE (u)-[:CLICKED {count: 2, ts: 1700000000.25 + k, weight: 0.5 * k}]->(i))
        FOREACH (_ IN CASE WHEN k % 4 = 1 THEN [1] ELSE [] END |
            CREATE (u)-[:CLICKED {count: 3, ts: 1700000000 + k}]->(i))
        FOREACH (_ IN CASE WHEN k % 4 = 2 THEN [1] ELSE [] END |
            CREATE (u)-[:CLICKED]->(i))
        FOREACH (_ IN CASE WHEN k % 4 = 3 THEN [1] ELSE [] END |
            CREATE (u)-[:CLICKED {weight: 7}]->(i))
        CREATE (u)-[:VIEWED {count: 1, ts: 1700000100.5 + k, weight: 1.0}]->(i)
        CREATE (q)-[:LED_TO {count: k}]->(i)
        """
    )
    return empty_graph


def sorted_columns(cols: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    order = np.lexsort((cols[1], cols[0]))
    return tuple(c[order] for c in cols)


def assert_same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys()
    for rel in a:
        left, right = sorted_columns(a[rel]), sorted_columns(b[rel])
        for x, y in zip(left, right, strict=True):
            assert x.dtype == y.dtype, rel
            np.testing.assert_array_equal(x, y, err_msg=rel)


def test_the_managed_server_has_the_procedure(driver: Driver) -> None:
    assert has_procedure(driver, COLUMNS_PROCEDURE)
    names = {r["name"] for r in driver.execute_query("SHOW PROCEDURES YIELD name").records}
    assert COLUMNS_PROCEDURE in names


@pytest.mark.parametrize("window", [(None, None), (1700000010.0, 1700000130.0), (None, 1.7e9 + 20)])
def test_columns_equal_the_cypher_statements(
    odd_graph: Driver, window: tuple[float | None, float | None]
) -> None:
    since, until = window
    cypher = {rel: type_columns(odd_graph, rel, since, until, "neo4j") for rel in TYPES}
    # the Cypher reader windows only the user types; so does the exporter's procedure call
    user = relationship_columns(odd_graph, (model.CLICKED, model.VIEWED), since, until)
    other = relationship_columns(odd_graph, (model.LED_TO, model.HAS_TERM))
    assert_same({**user, **other}, cypher)
    clicked = sorted_columns(user[model.CLICKED])
    if since is None and until is None:
        assert len(clicked[0]) == 40
        # weight, else count, else 1.0; ts NaN when missing
        assert sorted(set(clicked[3].tolist()) - {0.5 * k for k in range(0, 40, 4)}) == [
            1.0,
            3.0,
            7.0,
        ]
        assert int(np.isnan(clicked[2]).sum()) == 20
        assert len(other[model.HAS_TERM][0]) == 0
    else:
        assert not np.isnan(clicked[2]).any()


def test_chunks_and_partitions_reassemble_to_the_same_columns(odd_graph: Driver) -> None:
    whole = relationship_columns(odd_graph, TYPES)
    chunked = relationship_columns(odd_graph, TYPES, chunk=7)
    assert_same(whole, chunked)
    parts = [relationship_columns(odd_graph, TYPES, partition=(i, 3)) for i in range(3)]
    sizes = [sum(len(cols[0]) for cols in part.values()) for part in parts]
    assert sum(sizes) == 120 and min(sizes) > 0
    assert_same(whole, concat_columns(parts))
    records = execute(
        odd_graph,
        "export/get_relationship_columns",
        {
            "types": [model.VIEWED],
            "since": None,
            "until": None,
            "chunk": 7,
            "partition": 0,
            "partitions": 1,
        },
        read=True,
    )
    assert [r["count"] for r in records] == [7] * 5 + [5]
    assert all(
        len(r["source"]) == 8 * r["count"] and len(r["weight"]) == 4 * r["count"] for r in records
    )


def test_unknown_types_and_bad_chunks(odd_graph: Driver) -> None:
    from graphstore.errors import GraphStoreError

    assert relationship_columns(odd_graph, (model.RATED,))[model.RATED][0].size == 0
    with pytest.raises(GraphStoreError, match="chunk must be between"):
        relationship_columns(odd_graph, (model.VIEWED,), chunk=0)
    with pytest.raises(GraphStoreError, match=r"partition must be in \[0, partitions\)"):
        relationship_columns(odd_graph, (model.VIEWED,), partition=(2, 2))


def test_the_procedures_build_once_per_neo4j_version(services_up: None, tmp_path: Path) -> None:
    """The Maven module (``graphstore/assets/plugin/pom.xml``) builds with the managed Neo4j
    version into a jar cached by version and source digest, and a second build reuses it."""
    from dpgcn import neo4j_install, neo4j_plugins, services
    from dpgcn.settings import get_settings

    managed = services.neo4j_spec(get_settings())
    java = neo4j_install.find_java()
    s = neo4j_install.Neo4jServerSpec(
        home=tmp_path / "home",
        cache=tmp_path / "cache",
        secrets_dir=tmp_path / "secrets",
        version=managed.version,
    )
    jar = neo4j_plugins.build_procedures(s, java)
    assert jar is not None and jar.parent == tmp_path / "cache" / "procedures" / (
        f"neo4j-{managed.version}"
    )
    names = zipfile.ZipFile(jar).namelist()
    assert "dpgcn/procs/ExportProcedures.class" in names
    assert not [n for n in names if n.startswith("org/neo4j/")]  # provided by the server
    stamp = jar.stat().st_mtime_ns
    assert neo4j_plugins.build_procedures(s, java) == jar
    assert jar.stat().st_mtime_ns == stamp
