"""The offline bulk path (``neo4j-admin database import``, ``dpgcn load … --bulk``): it is
refused on a database that holds anything, and on an empty one it builds the same graph —
every node, relationship and property — as the online loader from the same rows, with the
schema in place afterwards.

These tests run on a managed Neo4j of their own (a temporary state home, free ports, small
memory), not on the suite's server: an import replaces the store and starts its transaction
ids afresh, so the drivers and worker processes of the other tests, whose bookmarks name
transactions of the old store, would wait for transactions that never come."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from neo4j import Driver

from dpgcn import bulk_import, neo4j_server, services
from dpgcn.settings import Settings, get_settings
from graphstore import model
from graphstore.driver import connect, delete_all
from graphstore.ingest import load_source
from graphstore.records import GraphSource
from graphstore.sources.loaders import load_dataset
from graphstore.sources.synthetic import SyntheticSpec, generate
from tests.integration.test_loaders import graph_counts, snapshot, write_generic

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    base = get_settings()
    if not base.neo4j.managed:
        pytest.skip("the bulk path needs the locally managed Neo4j")
    neo4j = base.neo4j.model_copy(
        update={
            "bolt_port": free_port(),
            "http_port": free_port(),
            "heap": "512m",
            "pagecache": "256m",
        }
    )
    settings = base.model_copy(
        update={"home": tmp_path_factory.mktemp("bulk-home"), "neo4j": neo4j}
    )
    spec = services.neo4j_spec(settings)
    neo4j_server.start(spec, timeout=300)
    try:
        yield settings
    finally:
        neo4j_server.stop(spec)


def open_driver(settings: Settings) -> Driver:
    """A new driver (new bookmarks: the store may have been replaced since the last)."""
    conn = services.neo4j_connection(settings)
    return connect(conn.uri, conn.user, conn.password)


def online_then_bulk(settings: Settings, source: GraphSource) -> tuple[object, object]:
    """Load ``source`` online into the empty graph, then replace the graph by a bulk import
    of the same rows; the two (snapshot, per-label/type counts)."""
    with open_driver(settings) as driver:
        delete_all(driver)
        online = load_source(driver, source)
        by_online = snapshot(driver), graph_counts(driver)
    done = bulk_import.bulk_load(settings, source, replace=True)
    assert done.summary.written == online.written
    assert done.summary.unmatched == online.unmatched
    assert done.import_s > 0 and not done.directory.exists()  # files removed afterwards
    with open_driver(settings) as driver:
        return by_online, (snapshot(driver), graph_counts(driver))


def test_bulk_is_refused_on_a_database_that_is_not_empty(own_server: Settings) -> None:
    source, _ = generate(SyntheticSpec(users=20, items=10, events_per_user=3, seed=5))
    with open_driver(own_server) as driver:
        delete_all(driver)
        load_source(driver, source)
        before = snapshot(driver)
    with pytest.raises(services.ServiceError, match="only for an empty one"):
        bulk_import.bulk_load(own_server, source)
    with open_driver(own_server) as driver:
        assert snapshot(driver) == before


def test_bulk_is_refused_for_an_external_server(own_server: Settings) -> None:
    external = own_server.model_copy(
        update={"neo4j": own_server.neo4j.model_copy(update={"uri": "neo4j://example:7687"})}
    )
    with pytest.raises(services.ServiceError, match="locally managed"):
        bulk_import.bulk_load(external, GraphSource(name="nothing"))


def test_bulk_import_equals_online_load_generic(own_server: Settings, tmp_path: Path) -> None:
    # nulls, "no" consent, ratings, multi-level categories, queries, terms
    source = load_dataset("generic", write_generic(tmp_path / "g"))
    by_online, by_bulk = online_then_bulk(own_server, source)
    assert by_bulk == by_online
    with open_driver(own_server) as driver:  # the schema is back
        constraints = driver.execute_query(
            "SHOW CONSTRAINTS YIELD labelsOrTypes AS l, properties AS p RETURN l, p"
        ).records
        assert any(r["l"] == [model.USER] and r["p"] == ["id"] for r in constraints)
        with pytest.raises(Exception, match="already exists"):
            driver.execute_query("CREATE (:User {id: 'u1'})")


def test_bulk_import_equals_online_load_synthetic(own_server: Settings) -> None:
    source, _ = generate(SyntheticSpec(users=120, items=50, events_per_user=6, seed=9))
    by_online, by_bulk = online_then_bulk(own_server, source)
    counts = by_bulk[1]
    assert isinstance(counts, dict)
    assert counts[model.USER] == 120 and counts["User-SEARCHED->Query"] > 0
    assert by_bulk == by_online
    with open_driver(own_server) as driver:  # the online loader merges into it: no change
        again = load_source(driver, source)
        assert again.created == []
        assert (snapshot(driver), graph_counts(driver)) == by_online
