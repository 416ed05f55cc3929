"""`dpgcn load <source>`: a good file is loaded; a bad one is refused with file:line and
nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from neo4j import Driver

from tests.integration.conftest import run_cli
from tests.paths import ROOT

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


def changes(out: str) -> dict[str, str]:
    """The summary's ``change`` column by label/type (``+0``…)."""
    found: dict[str, str] = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[3][:1] in "+-" and fields[1][:1].isdigit():
            found[fields[0]] = fields[3]
    return found


def write_semicolon_ms(root: Path) -> Path:
    """The dataset of ``write_dataset`` as a ';'-separated export with epoch milliseconds."""
    root.mkdir()
    (root / "items.csv").write_text(
        "id;title;price;category\ni1;Racing Wheel;99.5;Games>Racing\ni2;Chess Set;20;Games>Board\n"
    )
    (root / "events.csv").write_text(
        "event_id;user;type;item;query;ts\n"
        "e1;u1;search;;racing wheel;1704103200000\n"
        "e2;u1;click;i1;racing wheel;1704103260000\n"
        "e3;u2;purchase;i2;;1704103320500\n"
        "e3;u2;purchase;i2;;1704103320500\n"
    )
    return root


@pytest.mark.parametrize("given", [True, False], ids=["--delimiter", "detected"])
def test_semicolon_file_with_epoch_milliseconds(
    empty_graph: Driver, tmp_path: Path, given: bool
) -> None:
    path = write_semicolon_ms(tmp_path / "semi")
    args = ["load", "generic", "--path", str(path), *(["--delimiter", ";"] if given else [])]
    out = run_cli(*args).stdout
    assert changes(out) == {
        "User": "+2",
        "Item": "+2",
        "Query": "+1",
        "Term": "+4",  # race, wheel, chess, set
        "Category": "+3",
        "SEARCHED": "+1",
        "VIEWED": "+0",
        "CLICKED": "+1",
        "RATED": "+0",
        "PURCHASED": "+1",
        "LED_TO": "+1",
        "HAS_TERM": "+6",
        "IN_CATEGORY": "+2",
        "SUBCATEGORY_OF": "+2",
    }, out
    assert "skipped, events.csv: repeated event_id: 1" in out
    ts = empty_graph.execute_query(
        "MATCH (:User {id: 'u2'})-[r:PURCHASED]->(:Item {id: 'i2'}) RETURN r.ts AS ts"
    ).records
    assert [r["ts"] for r in ts] == [1704103320.5]  # 2024-01-01, not the year ~56,000


def documented_second_load() -> list[str]:
    """The second-load output docs/loaders.md shows (its "What `dpgcn load` prints")."""
    text = (ROOT / "docs" / "loaders.md").read_text(encoding="utf-8")
    block = text.split("run twice):\n\n```text\n", 1)[1].split("\n```", 1)[0]
    return block.splitlines()


def test_second_load_changes_nothing_and_says_so(empty_graph: Driver, tmp_path: Path) -> None:
    path = write_dataset(tmp_path / "good", bad_type=False)
    first = changes(run_cli("load", "generic", "--path", str(path)).stdout)
    assert first["User"] == "+2" and first["CLICKED"] == "+1"
    again = run_cli("load", "generic", "--path", str(path)).stdout
    assert set(changes(again).values()) == {"+0"}, again
    assert len(changes(again)) == 14
    assert "rejected rows: 0" in again and "rows whose endpoints were missing: 0" in again
    # the doc shows this very output
    assert again.splitlines()[1:] == documented_second_load()[1:], again


def test_one_more_user_shows_as_plus_one(empty_graph: Driver, tmp_path: Path) -> None:
    path = write_dataset(tmp_path / "good", bad_type=False)
    run_cli("load", "generic", "--path", str(path))
    with (path / "events.csv").open("a") as log:
        log.write("u3,view,i2,,1704103400\n")
    out = changes(run_cli("load", "generic", "--path", str(path)).stdout)
    assert out["User"] == "+1" and out["VIEWED"] == "+1" and out["Item"] == "+0"


def test_wrong_separator_names_the_right_one(empty_graph: Driver, tmp_path: Path) -> None:
    path = write_semicolon_ms(tmp_path / "semi")
    result = run_cli("load", "generic", "--path", str(path), "--delimiter", ",", check=False)
    assert result.returncode != 0
    assert f"{path / 'items.csv'}:1: missing column 'id'" in result.stderr
    assert "the header holds ';'" in result.stderr
    assert counts(empty_graph) == (0, 0)


def test_commands_print_no_schema_notes(driver: Driver) -> None:
    result = run_cli("apikey", "create", "--scope", "read", "--name", "cli-load-test")
    key_id = result.stdout.split()[3]
    try:
        assert "schema applied" not in result.stdout + result.stderr
        listed = run_cli("apikey", "list")
        assert "schema applied" not in listed.stdout + listed.stderr
    finally:
        run_cli("apikey", "revoke", key_id)
