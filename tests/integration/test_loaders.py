"""Loaders into the real Neo4j: what lands in the graph matches the source files, loading
twice changes nothing, and a malformed file leaves the graph untouched."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from neo4j import Driver

from graphstore import model
from graphstore.errors import InputError
from graphstore.ingest import load_source
from graphstore.records import GraphSource
from graphstore.sources.loaders import load_dataset
from tests.paths import DATA_DIR

pytestmark = pytest.mark.integration

DATA = DATA_DIR

USERS = "id,age,gender,occupation,consent\nu1,34,F,engineer,true\nu2,,M,,no\nu3,51,,teacher,\n"
ITEMS = """\
id,title,price,category
i1,Forza Motorsport 4,59.99,Games > Racing
i2,Gran Turismo 5,39.5,Games > Racing
i3,Halo Reach,19.99,Games > Shooters|Deals
i4,Wireless Headset,,Electronics > Audio > Headphones
"""
EVENTS = """\
event_id,user,type,item,query,ts,rating
e1,u1,search,,Racing games,2024-01-01T10:00:00Z,
e2,u1,click,i1,racing game,2024-01-01T10:00:30Z,
e3,u1,purchase,i1,racing game,2024-01-01T10:05:00Z,
e4,u2,view,i3,,1704103200,
e5,u2,rate,i3,,1704103300,4
e6,u2,rate,i3,,1704103400,5
e7,u3,search,,games for racing,2024-01-02T09:00:00,
e8,u3,click,i2,games for racing,2024-01-02T09:00:10,
e9,u1,click,i1,,2024-01-03T00:00:00Z,
"""


def write_generic(directory: Path, events: str = EVENTS) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, body in (("users", USERS), ("items", ITEMS), ("events", events)):
        (directory / f"{name}.csv").write_text(body)
    return directory


def shared(folder: str) -> Path:
    if not DATA.is_dir():
        pytest.skip(f"{DATA_DIR} is not available")
    return DATA / folder


def scalar(driver: Driver, query: str, **params: Any) -> Any:
    return driver.execute_query(query, params).records[0][0]


def graph_counts(driver: Driver) -> dict[str, int]:
    """Nodes per label and relationships per (source label, type, target label)."""
    out: dict[str, int] = {}
    for label in model.NODE_LABELS:
        out[label] = scalar(driver, f"MATCH (n:{label}) RETURN count(n)")
    for src, rel, dst in model.EDGE_TYPES:
        out[f"{src}-{rel}->{dst}"] = scalar(
            driver, f"MATCH (:{src})-[r:{rel}]->(:{dst}) RETURN count(r)"
        )
    out["total nodes"] = scalar(driver, "MATCH (n) RETURN count(n)")
    return out


def expected_counts(source: GraphSource) -> dict[str, int]:
    """What ``source`` should produce, computed from its rows alone."""
    category_links = sum(1 for c in source.categories if c["parent"] is not None)
    out = {
        model.USER: len(list(source.users)),
        model.ITEM: len(list(source.items)),
        model.QUERY: len(list(source.queries)),
        model.TERM: len(list(source.terms)),
        model.CATEGORY: len(list(source.categories)),
        f"{model.QUERY}-{model.LED_TO}->{model.ITEM}": len(list(source.led_to)),
        f"{model.QUERY}-{model.HAS_TERM}->{model.TERM}": len(list(source.query_terms)),
        f"{model.ITEM}-{model.HAS_TERM}->{model.TERM}": len(list(source.item_terms)),
        f"{model.ITEM}-{model.IN_CATEGORY}->{model.CATEGORY}": len(list(source.item_categories)),
        f"{model.CATEGORY}-{model.SUBCATEGORY_OF}->{model.CATEGORY}": category_links,
    }
    for rel in (*model.INTERACTIONS, model.SEARCHED):
        target = model.QUERY if rel == model.SEARCHED else model.ITEM
        out[f"{model.USER}-{rel}->{target}"] = len(list(source.interactions.get(rel, [])))
    out["total nodes"] = sum(out[label] for label in model.NODE_LABELS)
    return out


def snapshot(driver: Driver) -> tuple[list[Any], list[Any]]:
    """Every node and relationship with its properties, sorted (for a small graph)."""
    nodes = driver.execute_query("MATCH (n) RETURN labels(n) AS l, properties(n) AS p").records
    rels = driver.execute_query(
        "MATCH (a)-[r]->(b) RETURN a.id AS a, type(r) AS t, b.id AS b, properties(r) AS p"
    ).records
    return (
        sorted(json.dumps([r["l"], r["p"]], sort_keys=True) for r in nodes),
        sorted(json.dumps([r["a"], r["t"], r["b"], r["p"]], sort_keys=True) for r in rels),
    )


def test_generic_fixture_round_trip_and_reload(empty_graph: Driver, tmp_path: Path) -> None:
    source = load_dataset("generic", write_generic(tmp_path / "g"))
    summary = load_source(empty_graph, source)
    assert summary.unmatched == {}
    counts = graph_counts(empty_graph)
    assert counts == expected_counts(source)
    assert counts[model.USER] == 3 and counts[model.ITEM] == 4 and counts[model.QUERY] == 1
    assert counts[model.CATEGORY] == 7 and counts["Category-SUBCATEGORY_OF->Category"] == 4
    rated = empty_graph.execute_query(
        "MATCH (:User {id: 'u2'})-[r:RATED]->(:Item {id: 'i3'}) RETURN r.count AS c, r.weight AS w"
    ).records[0]
    assert (rated["c"], rated["w"]) == (2, 5.0)
    consent = scalar(empty_graph, "MATCH (u:User {id: 'u2'}) RETURN u.consent")
    assert consent is False
    led_to = scalar(
        empty_graph,
        "MATCH (:Query {id: 'game race'})-[r:LED_TO]->(:Item {id: 'i1'}) RETURN r.count",
    )
    assert led_to == 2

    before = snapshot(empty_graph)
    load_source(empty_graph, load_dataset("generic", tmp_path / "g"))
    assert graph_counts(empty_graph) == counts
    assert snapshot(empty_graph) == before  # same nodes, relationships and properties


def test_bestbuy_subset_twice(empty_graph: Driver) -> None:
    source = load_dataset("bestbuy", shared("bestbuy-xbox-small"), limit_users=300)
    load_source(empty_graph, source)
    counts = graph_counts(empty_graph)
    assert counts == expected_counts(source)
    assert counts[model.USER] == 300
    clicks = sum(r["count"] for r in source.interactions[model.CLICKED])
    assert scalar(empty_graph, "MATCH ()-[r:CLICKED]->() RETURN sum(r.count)") == clicks
    load_source(empty_graph, load_dataset("bestbuy", shared("bestbuy-xbox-small"), limit_users=300))
    assert graph_counts(empty_graph) == counts
    assert scalar(empty_graph, "MATCH ()-[r:CLICKED]->() RETURN sum(r.count)") == clicks


def test_jdsearch_sample(empty_graph: Driver) -> None:
    source = load_dataset("jdsearch", shared("jdsearch-sample"), include_test=True)
    load_source(empty_graph, source)
    counts = graph_counts(empty_graph)
    assert counts == expected_counts(source)
    assert counts[model.USER] == 3
    depth = scalar(
        empty_graph,
        "MATCH (i:Item)-[:IN_CATEGORY]->(c:Category) "
        "MATCH p = (c)-[:SUBCATEGORY_OF*0..]->(root:Category) "
        "WHERE NOT (root)-[:SUBCATEGORY_OF]->() RETURN max(length(p))",
    )
    assert depth == 3  # four levels


def test_amazon_fixture(empty_graph: Driver, tmp_path: Path) -> None:
    directory = tmp_path / "amazon"
    directory.mkdir()
    path = ["Electronics", "Computers & Accessories", "Laptops"]
    (directory / "meta_Electronics.json").write_text(
        repr({"asin": "B1", "title": "Acme Ultrabook", "price": 9.5, "categories": [path]})
        + "\n"
        + repr({"asin": "B2", "title": "Acme Sleeve", "categories": [path]})
        + "\n"
    )
    reviews = [("A1", "B1", 5.0, 1400000000), ("A1", "B2", 4.0, 1400000100), ("A2", "B1", 3.0, 1)]
    (directory / "reviews_Electronics_5.json").write_text(
        "".join(
            json.dumps({"reviewerID": u, "asin": a, "overall": o, "unixReviewTime": t}) + "\n"
            for u, a, o, t in reviews
        )
    )
    source = load_dataset("amazon", directory)
    load_source(empty_graph, source)
    counts = graph_counts(empty_graph)
    assert counts == expected_counts(source)
    assert counts["User-PURCHASED->Item"] == 3 and counts["User-SEARCHED->Query"] == 2
    searched = empty_graph.execute_query(
        "MATCH (u:User)-[r:SEARCHED]->(q:Query) RETURN u.id AS u, r.count AS c ORDER BY u"
    ).records
    assert [(r["u"], r["c"]) for r in searched] == [("A1", 2), ("A2", 1)]
    assert Counter(
        r["c"]
        for r in empty_graph.execute_query("MATCH ()-[r:LED_TO]->() RETURN r.count AS c").records
    ) == Counter({2: 1, 1: 1})


@pytest.mark.parametrize(
    "bad_row",
    [
        "e10,u1,like,i1,,2024-01-04T00:00:00Z,\n",
        "e10,u1,click,i1,,the day after,\n",
        "e10,u1,click,i404,,2024-01-04T00:00:00Z,\n",
    ],
)
def test_malformed_file_leaves_the_graph_empty(
    empty_graph: Driver, tmp_path: Path, bad_row: str
) -> None:
    directory = write_generic(tmp_path / "bad", events=EVENTS + bad_row)
    with pytest.raises(InputError) as caught:
        load_source(empty_graph, load_dataset("generic", directory))
    assert (caught.value.path, caught.value.line) == (str(directory / "events.csv"), 11)
    assert scalar(empty_graph, "MATCH (n) RETURN count(n)") == 0
    assert scalar(empty_graph, "MATCH ()-[r]->() RETURN count(r)") == 0


def test_rejected_rows_are_reported_and_good_rows_written(
    empty_graph: Driver, tmp_path: Path
) -> None:
    directory = write_generic(
        tmp_path / "bad", events=EVENTS + "e10,u1,like,i1,,2024-01-04T00:00:00Z,\n"
    )
    summary = load_source(empty_graph, load_dataset("generic", directory, on_error="reject"))
    assert summary.rejected == [
        f"{directory / 'events.csv'}:11: unknown event type 'like' "
        "(want one of search, view, click, purchase, rate)"
    ]
    assert scalar(empty_graph, "MATCH (n:User) RETURN count(n)") == 3


# Last: the biggest load (~30 s); no later test has to delete its graph first.
def test_movielens_matches_the_source_files(empty_graph: Driver) -> None:
    ml = shared("ml-100k")
    source = load_dataset("movielens", ml)
    summary = load_source(empty_graph, source)
    assert summary.unmatched == {}
    counts = graph_counts(empty_graph)
    assert counts == expected_counts(source)
    ratings = [line.split("\t") for line in (ml / "u.data").read_text().splitlines()]
    assert counts[model.USER] == 943 and counts[model.ITEM] == 1682
    assert counts["User-RATED->Item"] == len({(u, i) for u, i, _, _ in ratings})
    assert scalar(empty_graph, "MATCH ()-[r:RATED]->() RETURN sum(r.count)") == 100_000
    assert counts["User-CLICKED->Item"] == sum(1 for r in ratings if int(r[2]) >= 4)
    assert counts[model.CATEGORY] == 19 and counts[model.QUERY] == 0
    history = {(i, float(r)) for u, i, r, _ in ratings if u == "1"}
    stored = empty_graph.execute_query(
        "MATCH (:User {id: '1'})-[r:RATED]->(i:Item) RETURN i.id AS i, r.weight AS w"
    ).records
    assert {(r["i"], r["w"]) for r in stored} == history
    user = empty_graph.execute_query(
        "MATCH (u:User {id: '1'}) RETURN u.age AS age, u.gender AS g, u.occupation AS o"
    ).records[0]
    assert (user["age"], user["g"], user["o"]) == (24, "M", "technician")
