"""`dpgcn load <source>`: a good file is loaded; a bad one is refused with file:line and
nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from neo4j import Driver

from tests.integration.conftest import run_cli

pytestmark = pytest.mark.integration


def write_dataset(root: Path, bad_type: bool) -> Path:
    root.mkdir()
    (root / "items.csv").write_text(
        "id,title,price,category\ni1,Racing Wheel,99.5,Games>Racing\ni2,Chess Set,20,Games>Board\n"
    )
    kind = "like" if bad_type else "click"
    (root / "events.csv").write_text(
        "user,type,item,query,ts\n"
        "u1,search,,racing wheel,2024-01-01T10:00:00Z\n"
        f"u1,{kind},i1,racing wheel,2024-01-01T10:01:00Z\n"
        "u2,purchase,i2,,1704103200\n"
    )
    return root


def counts(driver: Driver) -> tuple[int, int]:
    r = driver.execute_query(
        "MATCH (n) OPTIONAL MATCH (n)-[r]->() RETURN count(DISTINCT n) AS n, count(r) AS r"
    ).records[0]
    return r["n"], r["r"]


def test_load_generic_from_the_command_line(empty_graph: Driver, tmp_path: Path) -> None:
    path = write_dataset(tmp_path / "good", bad_type=False)
    out = run_cli("load", "generic", "--path", str(path)).stdout
    assert "CLICKED" in out
    led = empty_graph.execute_query(
        "MATCH (:User {id: 'u1'})-[:SEARCHED]->(q:Query)-[:LED_TO]->(:Item {id: 'i1'}) "
        "RETURN q.id AS q"
    ).records
    assert [r["q"] for r in led] == ["race wheel"]  # the normalized (stemmed) query
    before = counts(empty_graph)
    run_cli("load", "generic", "--path", str(path))
    assert counts(empty_graph) == before  # idempotent


def test_bad_row_is_refused_with_file_and_line(empty_graph: Driver, tmp_path: Path) -> None:
    path = write_dataset(tmp_path / "bad", bad_type=True)
    result = run_cli("load", "generic", "--path", str(path), check=False)
    assert result.returncode != 0
    assert f"{path / 'events.csv'}:3:" in result.stderr and "like" in result.stderr
    assert counts(empty_graph) == (0, 0)


def test_bulk_load_is_refused_when_the_graph_is_not_empty(
    empty_graph: Driver, tmp_path: Path
) -> None:
    path = write_dataset(tmp_path / "good", bad_type=False)
    run_cli("load", "generic", "--path", str(path))
    before = counts(empty_graph)
    result = run_cli("load", "generic", "--path", str(path), "--bulk", check=False)
    assert result.returncode != 0
    assert "only for an empty one" in result.stderr and "--replace" in result.stderr
    assert counts(empty_graph) == before
