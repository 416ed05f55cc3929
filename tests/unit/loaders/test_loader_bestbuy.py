"""Best Buy search → click log: counts computed independently from the raw CSV files."""

from __future__ import annotations

import csv
from collections import Counter
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import pytest

from graphstore import model
from graphstore.errors import InputError
from graphstore.records import GraphSource
from graphstore.sources import text
from graphstore.sources.loaders import bestbuy

#: The project's query normalization, memoized (stemming is slow and queries repeat).
normalize = lru_cache(maxsize=None)(text.normalize_query)
_CACHE: dict[tuple[Path, tuple[str, ...]], GraphSource] = {}


def load(directory: Path, include: tuple[str, ...] = ("train",)) -> GraphSource:
    key = (directory, include)
    if key not in _CACHE:
        _CACHE[key] = bestbuy.load(directory, include=include)
    return _CACHE[key]


def raw(directory: Path, relative: str) -> list[dict[str, str]]:
    with (directory / relative).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def product_skus(directory: Path) -> set[str]:
    with (directory / "derived/product.csv").open(newline="", encoding="latin-1") as handle:
        return {row["sku"] for row in csv.DictReader(handle)}


def test_train_counts_match_the_csv(bestbuy_dir: Path) -> None:
    source = load(bestbuy_dir)
    rows = raw(bestbuy_dir, "labelled_split/train.csv")
    assert len(rows) == 33_892
    assert len(list(source.users)) == len({r["user"] for r in rows})
    clicked = list(source.interactions[model.CLICKED])
    assert sum(r["count"] for r in clicked) == len(rows)
    assert len(clicked) == len({(r["user"], r["sku"]) for r in rows})
    items = {i["id"] for i in source.items}
    assert items == product_skus(bestbuy_dir) | {r["sku"] for r in rows}
    queries = [normalize(r["query"]) for r in rows]
    searched = list(source.interactions[model.SEARCHED])
    assert sum(r["count"] for r in searched) == sum(1 for q in queries if q)
    assert {q["id"] for q in source.queries} == {q for q in queries if q}
    led_to = {(r["query"], r["item"]): r["count"] for r in source.led_to}
    expected = Counter((q, r["sku"]) for q, r in zip(queries, rows, strict=True) if q)
    assert led_to == dict(expected)
    assert source.rejected == []


def test_all_splits(bestbuy_dir: Path) -> None:
    source = load(bestbuy_dir, ("train", "test", "kaggle_test"))
    labelled = raw(bestbuy_dir, "labelled_split/train.csv") + raw(
        bestbuy_dir, "labelled_split/test.csv"
    )
    unlabelled = raw(bestbuy_dir, "kaggle_test/test.csv")
    assert len(labelled) == 42_365 and len(unlabelled) == 28_241
    users = {r["user"] for r in labelled} | {r["user"] for r in unlabelled}
    assert len(list(source.users)) == len(users)
    assert sum(r["count"] for r in source.interactions[model.CLICKED]) == len(labelled)
    searches = sum(1 for r in labelled + unlabelled if normalize(r["query"]))
    assert sum(r["count"] for r in source.interactions[model.SEARCHED]) == searches


def test_spot_checked_user(bestbuy_dir: Path) -> None:
    rows = raw(bestbuy_dir, "labelled_split/train.csv")
    per_user = Counter(r["user"] for r in rows)
    user = sorted(u for u, n in per_user.items() if n >= 3)[0]
    history = [r for r in rows if r["user"] == user]
    source = load(bestbuy_dir)
    clicked = {
        r["target"]: r["count"] for r in source.interactions[model.CLICKED] if r["user"] == user
    }
    assert clicked == dict(Counter(r["sku"] for r in history))
    searched = {r["target"] for r in source.interactions[model.SEARCHED] if r["user"] == user}
    assert searched == {normalize(r["query"]) for r in history} - {""}
    latest = max(r["click_time"] for r in history if r["sku"] == history[0]["sku"])
    row = next(
        r
        for r in source.interactions[model.CLICKED]
        if r["user"] == user and r["target"] == history[0]["sku"]
    )
    moment = datetime.strptime(latest, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
    assert row["ts"] == pytest.approx(moment.timestamp())


def test_items_terms_and_genres(bestbuy_dir: Path) -> None:
    source = load(bestbuy_dir)
    items = {i["id"]: i for i in source.items}
    assert items["1004622"]["title"] == "360 ghost sniper warrior xbox"
    terms = {r["term"] for r in source.item_terms if r["item"] == "1004622"}
    assert terms == {"360", "ghost", "sniper", "warrior", "xbox"}
    parents = {c["id"]: c["parent"] for c in source.categories}
    assert parents[bestbuy.ROOT_CATEGORY] is None
    genres = {c for c, p in parents.items() if p == bestbuy.ROOT_CATEGORY}
    # "Sports  Outdoors" and "sports  outdoors" are one genre
    assert "abcat0701002 > sports outdoors" in genres and len(genres) == 16
    per_item = Counter(r["item"] for r in source.item_categories)
    assert set(per_item) == set(items) and set(per_item.values()) == {1}


def test_limit_users(bestbuy_dir: Path) -> None:
    source = bestbuy.load(bestbuy_dir, limit_users=50)
    rows = raw(bestbuy_dir, "labelled_split/train.csv")
    first: list[str] = []
    for r in rows:
        if r["user"] not in first:
            first.append(r["user"])
        if len(first) == 50:
            break
    assert {u["id"] for u in source.users} == set(first)
    kept = [r for r in rows if r["user"] in set(first)]
    assert sum(r["count"] for r in source.interactions[model.CLICKED]) == len(kept)


def test_unknown_split(bestbuy_dir: Path) -> None:
    with pytest.raises(ValueError, match="unknown Best Buy split"):
        bestbuy.load(bestbuy_dir, include=("validation",))


HEADER = "user,sku,category,query,click_time,query_time\n"
GOOD = "aa,1,abcat0701002,halo,2011-09-01 10:00:01.5,2011-09-01 10:00:00.1\n"


@pytest.mark.parametrize(
    ("content", "line", "reason"),
    [
        ("user,category,query,click_time,query_time\n" + GOOD, 1, "missing column 'sku'"),
        (HEADER + GOOD + GOOD.replace("10:00:01.5", "31/09/2011"), 3, "bad timestamp"),
        (HEADER + GOOD + ",1,abcat0701002,halo,2011-09-01,2011-09-01\n", 3, "empty user"),
        (HEADER + "bb,,abcat0701002,halo,2011-09-01,2011-09-01\n", 2, "empty sku"),
    ],
)
def test_malformed_log(tmp_path: Path, content: str, line: int, reason: str) -> None:
    (tmp_path / "labelled_split").mkdir()
    file = tmp_path / "labelled_split" / "train.csv"
    file.write_text(content)
    with pytest.raises(InputError) as caught:
        bestbuy.load(tmp_path)
    assert (caught.value.path, caught.value.line) == (str(file), line)
    assert reason in caught.value.reason
    if line > 1:
        source = bestbuy.load(tmp_path, on_error="reject")
        assert len(source.rejected) == 1 and source.rejected[0].startswith(f"{file}:{line}: ")


def test_missing_split_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="Best Buy train file not found"):
        bestbuy.load(tmp_path)
