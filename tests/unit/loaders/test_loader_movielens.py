"""MovieLens 100K: counts against the raw files, a spot-checked user, and malformed files."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from graphstore import model
from graphstore.errors import InputError
from graphstore.records import GraphSource
from graphstore.sources.loaders import movielens

_CACHE: dict[Path, GraphSource] = {}


def load(ml100k: Path) -> GraphSource:
    if ml100k not in _CACHE:
        _CACHE[ml100k] = movielens.load(ml100k)
    return _CACHE[ml100k]


def raw_ratings(ml100k: Path) -> list[tuple[str, str, int, int]]:
    out = []
    with (ml100k / "u.data").open() as handle:
        for line in handle:
            user, item, rating, ts = line.split("\t")
            out.append((user, item, int(rating), int(ts)))
    return out


def test_counts_match_the_source_files(ml100k: Path) -> None:
    source = load(ml100k)
    ratings = raw_ratings(ml100k)
    user_lines = (ml100k / "u.user").read_text().splitlines()
    item_lines = (ml100k / "u.item").read_text(encoding="latin-1").splitlines()
    assert len(list(source.users)) == len(user_lines) == 943
    assert len(list(source.items)) == len(item_lines) == 1682
    rated = list(source.interactions[model.RATED])
    assert sum(r["count"] for r in rated) == len(ratings) == 100_000  # before aggregation
    assert len(rated) == len({(u, i) for u, i, _, _ in ratings})  # unique pairs after
    positives = [r for r in ratings if r[2] >= 4]
    clicked = list(source.interactions[model.CLICKED])
    assert sum(r["count"] for r in clicked) == len(positives) == 34_174 + 21_201
    assert set(source.interactions) == {model.RATED, model.CLICKED}
    assert list(source.queries) == [] and list(source.led_to) == []
    assert len(list(source.categories)) == 19
    assert source.rejected == []


def test_spot_checked_user(ml100k: Path) -> None:
    source = load(ml100k)
    users = {u["id"]: u for u in source.users}
    assert users["1"] == {
        "id": "1",
        "age": 24,
        "gender": "M",
        "occupation": "technician",
        "consent": True,
    }
    history = {(i, r, t) for u, i, r, t in raw_ratings(ml100k) if u == "1"}
    rated = {
        (r["target"], r["weight"], r["ts"])
        for r in source.interactions[model.RATED]
        if r["user"] == "1"
    }
    assert rated == {(i, float(r), float(t)) for i, r, t in history}
    assert len(rated) == 272
    clicked = {r["target"] for r in source.interactions[model.CLICKED] if r["user"] == "1"}
    assert clicked == {i for i, r, _ in history if r >= 4}


def test_item_genres_and_title_terms(ml100k: Path) -> None:
    source = load(ml100k)
    items = {i["id"]: i for i in source.items}
    assert items["1"] == {"id": "1", "title": "Toy Story (1995)", "price": None}
    genres = {r["category"] for r in source.item_categories if r["item"] == "1"}
    assert genres == {"Animation", "Children's", "Comedy"}
    terms = {r["term"] for r in source.item_terms if r["item"] == "1"}
    assert terms == {"toy", "stori"}  # the "(1995)" year is not a title word
    per_genre = Counter(r["category"] for r in source.item_categories)
    flags: Counter[str] = Counter()
    names = movielens.GENRES
    for line in (ml100k / "u.item").read_text(encoding="latin-1").splitlines():
        for name, flag in zip(names, line.split("|")[5:], strict=True):
            flags[name] += flag == "1"
    assert per_genre == +flags


def test_positive_threshold_option(ml100k: Path) -> None:
    source = movielens.load(ml100k, positive_threshold=None)
    assert set(source.interactions) == {model.RATED}


def write_ml(directory: Path, data: str) -> Path:
    directory.mkdir()
    (directory / "u.user").write_text("1|30|F|writer|00000\n2|40|M|artist|11111\n")
    flags = "|".join(["0"] * 18)
    (directory / "u.item").write_text(
        f"1|Alpha Movie (1990)|01-Jan-1990||http://x|1|{flags}\n"
        f"2|Beta Movie (1991)|01-Jan-1991||http://y|0|{flags}\n",
        encoding="latin-1",
    )
    (directory / "u.data").write_text(data)
    return directory


@pytest.mark.parametrize(
    ("data", "line", "reason"),
    [
        ("1\t1\t5\t100\n1\t2\tfive\t100\n", 2, "non-numeric rating 'five'"),
        ("1\t1\t9\t100\n", 1, "rating 9 outside 1–5"),
        ("1\t1\t5\t100\n2\t2\t3\tnoon\n", 2, "non-numeric timestamp 'noon'"),
        ("1\t1\t5\t100\n2\t1\t4\t100\n3\t1\t4\t100\n", 3, "dangling reference: user '3'"),
        ("1\t7\t5\t100\n", 1, "dangling reference: movie '7'"),
        ("1\t1\t5\n", 1, "expected 4 fields, found 3"),
    ],
)
def test_malformed_ratings(tmp_path: Path, data: str, line: int, reason: str) -> None:
    directory = write_ml(tmp_path / "ml", data)
    with pytest.raises(InputError) as caught:
        movielens.load(directory)
    assert (caught.value.path, caught.value.line) == (str(directory / "u.data"), line)
    assert reason in caught.value.reason


def test_malformed_user_and_reject_mode(tmp_path: Path) -> None:
    directory = write_ml(tmp_path / "ml", "1\t1\t5\t100\n2\t1\t4\t100\n2\t2\t1\t100\n")
    (directory / "u.user").write_text("1|30|F|writer|00000\n2|forty|M|artist|11111\n")
    with pytest.raises(InputError, match=r"u\.user:2: non-numeric age 'forty'"):
        movielens.load(directory)
    source = movielens.load(directory, on_error="reject")
    assert source.rejected == [
        f"{directory / 'u.user'}:2: non-numeric age 'forty'",
        f"{directory / 'u.data'}:2: dangling reference: user '2' is not in u.user",
        f"{directory / 'u.data'}:3: dangling reference: user '2' is not in u.user",
    ]
    assert [(r["user"], r["target"]) for r in source.interactions[model.RATED]] == [("1", "1")]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"u\.user: u\.user not found"):
        movielens.load(tmp_path)
