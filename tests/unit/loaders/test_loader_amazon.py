"""Amazon reviews + metadata (raw 2014 format, a fixture written here) and the DIN sample."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from graphstore import model
from graphstore.errors import InputError
from graphstore.sources import text
from graphstore.sources.loaders import amazon

LAPTOPS = ["Electronics", "Computers & Accessories", "Laptops"]
CABLES = ["Electronics", "Accessories & Supplies", "Cables"]
META: list[dict[str, Any]] = [
    {"asin": "B001", "title": "Acme Ultrabook 13", "price": 899.0, "categories": [LAPTOPS]},
    {
        "asin": "B002",
        "title": "HDMI Cable 2m",
        "price": 7.5,
        "categories": [CABLES, ["Electronics"]],
    },
    {"asin": "B003", "title": "Acme Laptop Sleeve", "categories": [LAPTOPS, CABLES]},
]
REVIEWS: list[dict[str, Any]] = [
    {
        "reviewerID": "A1",
        "asin": "B001",
        "overall": 5.0,
        "unixReviewTime": 1400000000,
        "reviewText": "Great",
        "summary": "Five stars",
        "helpful": [1, 2],
    },
    {"reviewerID": "A1", "asin": "B002", "overall": 3.0, "unixReviewTime": 1400100000},
    {"reviewerID": "A2", "asin": "B003", "overall": 4.0, "unixReviewTime": 1400200000},
    {"reviewerID": "A2", "asin": "B001", "overall": 2.0, "unixReviewTime": 1400300000},
]


def write(
    directory: Path,
    meta: list[str] | None = None,
    reviews: list[str] | None = None,
    gz: bool = False,
) -> Path:
    """The fixture: metadata as the 2014 files store it (Python literals, single quotes) and
    reviews as strict JSON."""
    directory.mkdir(parents=True, exist_ok=True)
    meta_lines = meta if meta is not None else [repr(m) for m in META]
    review_lines = reviews if reviews is not None else [json.dumps(r) for r in REVIEWS]
    (directory / "meta_Electronics.json").write_text("\n".join(meta_lines) + "\n")
    body = "\n".join(review_lines) + "\n"
    if gz:
        with gzip.open(directory / "reviews_Electronics_5.json.gz", "wt") as handle:
            handle.write(body)
    else:
        (directory / "reviews_Electronics_5.json").write_text(body)
    return directory


def pairs(rows: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["user"], r["target"]): r for r in rows}


def test_reviews_become_purchases_searches_and_led_to(tmp_path: Path) -> None:
    source = amazon.load(write(tmp_path / "a"))
    laptops = text.normalize_query(" ".join(LAPTOPS))
    cables = text.normalize_query(" ".join(CABLES))
    assert laptops == "accessori comput electron laptop"
    assert {q["id"] for q in source.queries} == {laptops, cables}  # ["Electronics"]: too short
    purchased = pairs(source.interactions[model.PURCHASED])
    assert set(purchased) == {("A1", "B001"), ("A1", "B002"), ("A2", "B003"), ("A2", "B001")}
    assert purchased[("A1", "B001")]["ts"] == 1400000000.0
    rated = pairs(source.interactions[model.RATED])
    assert rated[("A2", "B001")]["weight"] == 2.0
    searched = pairs(source.interactions[model.SEARCHED])
    assert {k: r["count"] for k, r in searched.items()} == {
        ("A1", laptops): 1,
        ("A1", cables): 1,
        ("A2", laptops): 2,  # B003 and B001
        ("A2", cables): 1,
    }
    led_to = {(r["query"], r["item"]): r["count"] for r in source.led_to}
    assert led_to == {
        (laptops, "B001"): 2,
        (cables, "B002"): 1,
        (laptops, "B003"): 1,
        (cables, "B003"): 1,
    }
    assert source.rejected == []


def test_items_categories_and_terms(tmp_path: Path) -> None:
    source = amazon.load(write(tmp_path / "a"))
    items = {i["id"]: i for i in source.items}
    assert items["B003"] == {"id": "B003", "title": "Acme Laptop Sleeve", "price": None}
    parents = {c["id"]: c["parent"] for c in source.categories}
    assert parents["Electronics > Computers & Accessories > Laptops"] == (
        "Electronics > Computers & Accessories"
    )
    assert parents["Electronics"] is None and len(parents) == 5
    links = {(r["item"], r["category"]) for r in source.item_categories}
    assert ("B002", "Electronics") in links and len(links) == 5
    assert {r["term"] for r in source.item_terms if r["item"] == "B002"} == {"hdmi", "cabl", "2m"}


def test_strict_json_metadata_gzip_and_options(tmp_path: Path) -> None:
    directory = write(tmp_path / "a", meta=[json.dumps(m) for m in META], gz=True)
    source = amazon.load(directory, rated=False, min_query_depth=1)
    assert model.RATED not in source.interactions
    assert text.normalize_query("Electronics") in {q["id"] for q in source.queries}
    assert len(list(source.interactions[model.PURCHASED])) == 4


def test_loading_twice_is_identical(tmp_path: Path) -> None:
    directory = write(tmp_path / "a")
    a, b = amazon.load(directory), amazon.load(directory)
    assert a.interactions == b.interactions and list(a.led_to) == list(b.led_to)


@pytest.mark.parametrize(
    ("which", "lines", "line", "reason"),
    [
        ("reviews", [json.dumps(REVIEWS[0]), "{not json"], 2, "invalid JSON"),
        (
            "reviews",
            [json.dumps({"reviewerID": "A1", "overall": 1, "unixReviewTime": 1})],
            1,
            "missing field 'asin'",
        ),
        (
            "reviews",
            [json.dumps({**REVIEWS[0], "overall": "great"})],
            1,
            "non-numeric rating 'overall' 'great'",
        ),
        ("reviews", [json.dumps({**REVIEWS[0], "unixReviewTime": "soon"})], 1, "bad timestamp"),
        (
            "reviews",
            [json.dumps(REVIEWS[0]), "", json.dumps({**REVIEWS[0], "asin": "B9"})],
            3,
            "dangling reference: asin 'B9'",
        ),
        (
            "meta",
            [repr(META[0]), repr({"asin": "B002", "price": "free"})],
            2,
            "non-numeric price 'free'",
        ),
        (
            "meta",
            [repr({"asin": "B002", "categories": "Electronics"})],
            1,
            "categories must be a list of lists",
        ),
        ("meta", ["[1, 2]"], 1, "one object"),
    ],
)
def test_bad_input(tmp_path: Path, which: str, lines: list[str], line: int, reason: str) -> None:
    directory = write(
        tmp_path / "a",
        meta=lines if which == "meta" else None,
        reviews=lines if which == "reviews" else None,
    )
    file = directory / (
        "meta_Electronics.json" if which == "meta" else "reviews_Electronics_5.json"
    )
    with pytest.raises(InputError) as caught:
        amazon.load(directory)
    assert (caught.value.path, caught.value.line) == (str(file), line)
    assert reason in caught.value.reason
    rejected = amazon.load(directory, on_error="reject").rejected
    assert rejected[0].startswith(f"{file}:{line}: ")


def test_no_review_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no reviews"):
        amazon.load(tmp_path)


def test_din_sample(din_dir: Path) -> None:
    with (din_dir / "amazon_electronics_sample.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    for path in (din_dir, din_dir / "amazon_electronics_sample.csv"):
        source = amazon.load(path)
        assert len(list(source.users)) == len({r["user_id"] for r in rows}) == 17
        assert len(list(source.items)) == len({r["item_id"] for r in rows}) == 99
        assert len(list(source.categories)) == len({r["cate_id"] for r in rows}) == 67
        purchased = list(source.interactions[model.PURCHASED])
        assert sum(r["count"] for r in purchased) == len(rows) == 100
        first = rows[0]
        assert {"item": first["item_id"], "category": first["cate_id"]} in list(
            source.item_categories
        )
        assert list(source.queries) == []


def test_din_bad_time(tmp_path: Path) -> None:
    file = tmp_path / "din.csv"
    file.write_text("user_id,item_id,time,cate_id\n0,1,1400457600,5\n0,2,yesterday,5\n")
    with pytest.raises(InputError) as caught:
        amazon.load(file)
    assert (caught.value.path, caught.value.line) == (str(file), 3)
