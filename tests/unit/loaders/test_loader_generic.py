"""The generic format loader: mapping, idempotence, and file:line errors for bad input."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from graphstore import model
from graphstore.errors import InputError
from graphstore.records import GraphSource
from graphstore.sources import text
from graphstore.sources.loaders import generic

QUERY = text.normalize_query("Racing games")


def rows(source: GraphSource, rel: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["user"], r["target"]): r for r in source.interactions.get(rel, [])}


def test_nodes_and_features(generic_dir: Path) -> None:
    source = generic.load(generic_dir)
    users = {u["id"]: u for u in source.users}
    assert users == {
        "u1": {"id": "u1", "age": 34, "gender": "F", "occupation": "engineer", "consent": True},
        "u2": {"id": "u2", "age": None, "gender": "M", "occupation": None, "consent": False},
        "u3": {"id": "u3", "age": 51, "gender": None, "occupation": "teacher", "consent": True},
    }
    items = {i["id"]: i for i in source.items}
    assert items["i1"] == {"id": "i1", "title": "Forza Motorsport 4", "price": 59.99}
    assert items["i4"]["price"] is None
    assert [q["id"] for q in source.queries] == [QUERY] == ["game race"]
    assert source.rejected == []


def test_category_paths_build_the_hierarchy(generic_dir: Path) -> None:
    source = generic.load(generic_dir)
    parents = {c["id"]: c["parent"] for c in source.categories}
    assert parents == {
        "Games": None,
        "Games > Racing": "Games",
        "Games > Shooters": "Games",
        "Deals": None,
        "Electronics": None,
        "Electronics > Audio": "Electronics",
        "Electronics > Audio > Headphones": "Electronics > Audio",
    }
    names = {c["id"]: c["name"] for c in source.categories}
    assert names["Electronics > Audio > Headphones"] == "Headphones"
    links = {(r["item"], r["category"]) for r in source.item_categories}
    assert links == {
        ("i1", "Games > Racing"),
        ("i2", "Games > Racing"),  # "Games>Racing" is the same path
        ("i3", "Games > Shooters"),
        ("i3", "Deals"),
        ("i4", "Electronics > Audio > Headphones"),
    }


def test_events_map_to_aggregated_interactions(generic_dir: Path) -> None:
    source = generic.load(generic_dir)
    searched = rows(source, model.SEARCHED)
    assert set(searched) == {("u1", QUERY), ("u3", QUERY)}
    assert searched[("u1", QUERY)]["ts"] == datetime(2024, 1, 1, 10, tzinfo=UTC).timestamp()
    clicked = rows(source, model.CLICKED)
    assert {k: r["count"] for k, r in clicked.items()} == {("u1", "i1"): 2, ("u3", "i2"): 1}
    # latest ts; a naive ISO time is UTC; the duplicate event_id e8 counted once
    assert clicked[("u1", "i1")]["ts"] == datetime(2024, 1, 3, tzinfo=UTC).timestamp()
    assert set(rows(source, model.PURCHASED)) == {("u1", "i1")}
    assert set(rows(source, model.VIEWED)) == {("u2", "i3")}
    rated = rows(source, model.RATED)[("u2", "i3")]
    assert (rated["count"], rated["weight"], rated["ts"]) == (2, 5.0, 1704103400.5)
    led_to = {(r["query"], r["item"]): r["count"] for r in source.led_to}
    assert led_to == {(QUERY, "i1"): 2, (QUERY, "i2"): 1}  # click + purchase after the search


def test_terms_link_queries_and_items(generic_dir: Path) -> None:
    source = generic.load(generic_dir)
    terms = {t["id"] for t in source.terms}
    item_terms = {(r["item"], r["term"]) for r in source.item_terms}
    assert ("i1", "forza") in item_terms and ("i1", "4") in item_terms
    assert {(r["query"], r["term"]) for r in source.query_terms} == {
        (QUERY, "game"),
        (QUERY, "race"),
    }
    assert {r["term"] for r in source.item_terms} | {"game", "race"} == terms


def test_loading_twice_gives_identical_rows(generic_dir: Path) -> None:
    a, b = generic.load(generic_dir), generic.load(generic_dir)
    for part in ("users", "items", "queries", "terms", "categories", "led_to", "item_terms"):
        assert list(getattr(a, part)) == list(getattr(b, part))
    assert a.interactions == b.interactions


def test_users_file_is_optional(make_generic: Callable[..., Path], tmp_path: Path) -> None:
    source = generic.load(make_generic(tmp_path / "g", users=""))
    assert {u["id"] for u in source.users} == {"u1", "u2", "u3"}
    assert all(u["age"] is None and u["consent"] is True for u in source.users)


def test_implied_searches(generic_dir: Path) -> None:
    source = generic.load(generic_dir, implied_searches=True)
    assert rows(source, model.SEARCHED)[("u1", QUERY)]["count"] == 3  # search + click + buy


def test_query_without_content_terms_adds_no_query(
    make_generic: Callable[..., Path], tmp_path: Path
) -> None:
    events = "user,type,item,query,ts\nu1,search,,the and of,1\nu1,click,i1,!!,2\n"
    source = generic.load(make_generic(tmp_path / "g", events=events))
    assert list(source.queries) == [] and list(source.led_to) == []
    assert set(rows(source, model.CLICKED)) == {("u1", "i1")}


HEADER = "event_id,user,type,item,query,ts,rating\n"


@pytest.mark.parametrize(
    ("stem", "text_", "line", "reason"),
    [
        ("events", "user,item,ts\nu1,i1,1\n", 1, "missing column 'type'"),
        ("users", "age\n3\n", 1, "missing column 'id'"),
        ("users", "id,age\nu1,34\nu2,abc\n", 3, "non-numeric age 'abc'"),
        ("users", "id,consent\nu1,maybe\n", 2, "bad consent 'maybe'"),
        ("items", "id,title,price\ni1,A,cheap\n", 2, "non-numeric price 'cheap'"),
        ("items", "id,title\ni1,A\ni1,B\n", 3, "duplicate item id 'i1'"),
        ("events", HEADER + "e1,u1,click,i1,,1,\ne2,u1,like,i1,,1,\n", 3, "unknown event type"),
        ("events", HEADER + "e1,u1,click,i1,,yesterday,\n", 2, "bad timestamp 'yesterday'"),
        ("events", HEADER + "e1,u1,click,i1,,,\n", 2, "empty timestamp"),
        ("events", HEADER + "e1,u1,click,i9,,1,\n", 2, "dangling reference: item 'i9'"),
        ("events", HEADER + "e1,u7,click,i1,,1,\n", 2, "dangling reference: user 'u7'"),
        ("events", HEADER + "e1,u1,rate,i1,,1,good\n", 2, "non-numeric rating 'good'"),
        ("events", HEADER + "e1,u1,search,,,1,\n", 2, "search event without query text"),
        ("events", HEADER + "e1,u1,click,,,1,\n", 2, "click event without item"),
        ("events", HEADER + "e1,u1,click,i1,,1\n", 2, "expected 7 fields, found 6"),
    ],
)
def test_bad_input_names_file_line_and_reason(
    make_generic: Callable[..., Path],
    tmp_path: Path,
    stem: str,
    text_: str,
    line: int,
    reason: str,
) -> None:
    directory = make_generic(tmp_path / "g", **{stem: text_})
    with pytest.raises(InputError) as caught:
        generic.load(directory)
    error = caught.value
    assert error.path == str(directory / f"{stem}.csv")
    assert error.line == line
    assert reason in error.reason
    assert str(error).startswith(f"{directory / f'{stem}.csv'}:{line}: ")


def test_line_numbers_count_quoted_newlines(
    make_generic: Callable[..., Path], tmp_path: Path
) -> None:
    items = 'id,title,price\ni1,"Two\nlines",1\ni2,B,x\n'
    with pytest.raises(InputError) as caught:
        generic.load(make_generic(tmp_path / "g", items=items))
    assert caught.value.line == 4


def test_missing_required_file(make_generic: Callable[..., Path], tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"items\.csv: items\.csv not found"):
        generic.load(make_generic(tmp_path / "g", items=""))
    with pytest.raises(InputError, match="not a directory"):
        generic.load(tmp_path / "nowhere")


def test_reject_collects_bad_rows_and_keeps_good_ones(
    make_generic: Callable[..., Path], tmp_path: Path
) -> None:
    users = "id,age\nu1,34\nu2,old\n"
    events = HEADER + "e1,u1,click,i1,,1,\ne2,u1,poke,i1,,1,\ne3,u2,click,i1,,1,\n"
    directory = make_generic(tmp_path / "g", users=users, events=events)
    source = generic.load(directory, on_error="reject")
    assert source.rejected == [
        f"{directory / 'users.csv'}:3: non-numeric age 'old'",
        f"{directory / 'events.csv'}:3: unknown event type 'poke' "
        "(want one of search, view, click, purchase, rate)",
        f"{directory / 'events.csv'}:4: dangling reference: user 'u2' is not in users",
    ]
    assert {u["id"] for u in source.users} == {"u1"}
    assert set(rows(source, model.CLICKED)) == {("u1", "i1")}


def test_reject_still_refuses_a_missing_column(
    make_generic: Callable[..., Path], tmp_path: Path
) -> None:
    with pytest.raises(InputError, match="missing column 'ts'"):
        generic.load(make_generic(tmp_path / "g", events="user,type\n"), on_error="reject")


def test_unknown_error_policy(generic_dir: Path) -> None:
    with pytest.raises(ValueError, match="on_error"):
        generic.load(generic_dir, on_error="ignore")


def test_parquet_variant(generic_dir: Path, tmp_path: Path) -> None:
    pa_csv = pytest.importorskip("pyarrow.csv")
    pq = pytest.importorskip("pyarrow.parquet")
    directory = tmp_path / "parquet"
    directory.mkdir()
    for stem in ("users", "items", "events"):
        table = pa_csv.read_csv(generic_dir / f"{stem}.csv")
        pq.write_table(table, directory / f"{stem}.parquet")
    a, b = generic.load(generic_dir), generic.load(directory)
    assert list(a.users) == list(b.users)  # ages read back as floats (nulls) are whole again
    assert list(a.items) == list(b.items) and list(a.categories) == list(b.categories)
    assert a.interactions == b.interactions and list(a.led_to) == list(b.led_to)
