"""Amazon product reviews (McAuley et al., the 2014 "Electronics"/"Books" files) → graph rows,
with queries built from category paths as in Ai et al. 2017 (personalized product search).

Raw format — a folder with one reviews file and one metadata file (names starting with
``reviews`` and ``meta``, ending ``.json`` or ``.json.gz``; or pass ``reviews=`` / ``meta=``),
one record per line (line numbers are 1-based; there is no header):

reviews (``reviews_Electronics_5.json``)
    JSON objects with ``reviewerID``, ``asin``, ``overall`` (1–5) and ``unixReviewTime``
    (epoch seconds) — other fields (``reviewText``, ``summary``, ``helpful`` …) are ignored.
metadata (``meta_Electronics.json``)
    one object per product with ``asin`` and optionally ``title``, ``price`` (number) and
    ``categories`` — a list of category paths, each a list of names from the root
    (``[["Electronics", "Computers & Accessories", "Laptops"]]``). The 2014 files are Python
    literals (single quotes) rather than strict JSON; both are accepted.

Mapping:

* ``reviewerID`` → ``User`` (no features); ``asin`` → ``Item`` (``title``, ``price``), the
  title's words are its ``Term`` nodes.
* every category path → ``Category`` nodes (id = the path joined by `` > ``, name = the level's
  name, ``SUBCATEGORY_OF`` the previous level); the item is ``IN_CATEGORY`` of each path's
  last level.
* queries (Ai et al. 2017): each category path of an item is also a search query whose text is
  the path's names concatenated; :func:`graphstore.sources.text.normalize_query` removes stop-words
  and duplicate words and stems it. Paths with fewer than ``min_query_depth`` levels (default
  2: a bare ``["Electronics"]`` would be one query leading to every product) make no query.
* each review of user u on item i at time t → ``PURCHASED(u, i)``, and for each query q of i
  ``SEARCHED(u, q)`` and ``LED_TO(q, i)`` (the purchase followed that search); with
  ``rated=True`` (default) also ``RATED(u, i)`` with weight = ``overall``.

A review of an asin that the metadata does not list is a dangling reference (when a metadata
file is given). Bad JSON, a missing field, a non-numeric rating or time, all raise
``InputError`` (``file:line: reason``) or, with ``on_error="reject"``, are skipped and listed in
``GraphSource.rejected``.

DIN-format sample: ``path`` may instead be the CSV of the DIN-style preprocessing
(``user_id,item_id,time,cate_id`` with integer ids, header = line 1), or a folder holding
only such a CSV: each row is ``PURCHASED(user, item)`` at ``time`` and the item is
``IN_CATEGORY`` of ``cate_id`` (a flat category; id and name = the number). That format has no
titles or category names, so it yields no terms and no queries.
"""

from __future__ import annotations

import ast
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from graphstore import model
from graphstore.records import GraphSource
from graphstore.sources.loaders.builder import SourceBuilder
from graphstore.sources.loaders.tables import Problems, check_id, fatal, read_table
from graphstore.sources.loaders.values import parse_float, parse_ts

DIN_COLUMNS = ("user_id", "item_id", "time", "cate_id")


def _open(path: Path) -> IO[str]:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def _records(path: Path, problems: Problems) -> Iterator[tuple[int, dict[str, Any]]]:
    """One object per line: strict JSON, or a Python literal (the 2014 metadata files)."""
    with _open(path) as handle:
        try:
            for number, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    record = json.loads(text)
                except json.JSONDecodeError as e:
                    try:
                        record = ast.literal_eval(text.strip())
                    except (ValueError, SyntaxError, MemoryError, RecursionError):
                        problems.report(path, number, f"invalid JSON: {e.msg}")
                        continue
                if not isinstance(record, dict):
                    problems.report(path, number, "a line must hold one object")
                    continue
                yield number, record
        except UnicodeDecodeError as e:
            raise fatal(path, None, f"cannot decode text ({e.reason})") from e


def _field(record: dict[str, Any], name: str) -> Any:
    value = record.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(f"missing field {name!r}")
    return value


def _find(directory: Path, prefix: str) -> Path | None:
    matches = sorted(
        p
        for p in directory.iterdir()
        if p.is_file() and p.name.startswith(prefix) and p.name.endswith((".json", ".json.gz"))
    )
    if len(matches) > 1:
        names = ", ".join(p.name for p in matches)
        raise fatal(directory, None, f"several {prefix}* files ({names}); pass {prefix}=")
    return matches[0] if matches else None


def load(
    path: Path,
    *,
    on_error: str = "raise",
    reviews: Path | None = None,
    meta: Path | None = None,
    rated: bool = True,
    min_query_depth: int = 2,
) -> GraphSource:
    """Parse Amazon review + metadata files (or a DIN-format CSV) into a :class:`GraphSource`."""
    location = Path(path)
    problems = Problems(on_error)
    if location.is_file() and location.suffix == ".csv":
        return _load_din(location, problems)
    if location.is_dir() and reviews is None:
        found = _find(location, "reviews")
        if found is None:
            csvs = sorted(location.glob("*.csv"))
            if len(csvs) == 1:
                return _load_din(csvs[0], problems)
            raise fatal(location, None, "no reviews*.json(.gz) file (nor one DIN-format CSV)")
        reviews = found
        meta = meta if meta is not None else _find(location, "meta")
    elif reviews is None:
        raise fatal(location, None, "not a folder of Amazon review files nor a DIN CSV")
    reviews = location / reviews if not Path(reviews).is_absolute() else Path(reviews)
    if meta is not None:
        meta = location / meta if not Path(meta).is_absolute() else Path(meta)
    for file in (reviews, meta):
        if file is not None and not file.is_file():
            raise fatal(file, None, "file not found")

    builder = SourceBuilder()
    item_queries: dict[str, list[str]] = {}
    if meta is not None:
        for line, record in _records(meta, problems):
            try:
                asin, title, price, paths = _product(record)
                check_id(asin, "asin")
                if asin in builder.items:
                    raise ValueError(f"duplicate asin {asin!r}")
            except ValueError as e:
                problems.report(meta, line, str(e))
                continue
            builder.add_item(asin, title=title, price=price)
            queries: list[str] = []
            for levels in paths:
                builder.add_item_category(asin, builder.add_category_path(levels))
                if len(levels) >= min_query_depth:
                    query_id = builder.add_query(" ".join(levels))
                    if query_id and query_id not in queries:
                        queries.append(query_id)
            item_queries[asin] = queries

    for line, record in _records(reviews, problems):
        try:
            user = str(_field(record, "reviewerID")).strip()
            asin = str(_field(record, "asin")).strip()
            overall = parse_float(str(_field(record, "overall")), "rating 'overall'")
            ts = parse_ts(str(_field(record, "unixReviewTime")))
            check_id(user, "reviewerID")
            check_id(asin, "asin")
            if meta is not None and asin not in builder.items:
                raise ValueError(f"dangling reference: asin {asin!r} is not in {meta.name}")
        except ValueError as e:
            problems.report(reviews, line, str(e))
            continue
        builder.add_user(user)
        builder.add_item(asin)
        builder.add_event(model.PURCHASED, user, asin, ts)
        if rated:
            builder.add_event(model.RATED, user, asin, ts, overall)
        for query_id in item_queries.get(asin, ()):
            builder.add_event(model.SEARCHED, user, query_id, ts)
            builder.add_led_to(query_id, asin)
    return builder.build(f"amazon({reviews.name})", problems.rejected)


def _product(record: dict[str, Any]) -> tuple[str, str | None, float | None, list[list[str]]]:
    asin = str(_field(record, "asin")).strip()
    raw_title = record.get("title")
    title = None
    if raw_title is not None:
        title = " ".join(str(raw_title).split()) or None
    raw_price = record.get("price")
    price = None
    if raw_price not in (None, ""):
        price = parse_float(str(raw_price), "price")
    raw_paths = record.get("categories") or []
    if not isinstance(raw_paths, list) or not all(isinstance(p, list) for p in raw_paths):
        raise ValueError("categories must be a list of lists of names")
    paths: list[list[str]] = []
    for raw_path in raw_paths:
        levels = [" ".join(str(name).split()) for name in raw_path]
        levels = [name for name in levels if name]
        if levels and levels not in paths:
            paths.append(levels)
    return asin, title, price, paths


def _load_din(path: Path, problems: Problems) -> GraphSource:
    builder = SourceBuilder()
    for line, row in read_table(path, required=DIN_COLUMNS, problems=problems):
        try:
            user, item = row["user_id"].strip(), row["item_id"].strip()
            category = row["cate_id"].strip()
            if not user or not item:
                raise ValueError("empty user_id or item_id")
            check_id(user, "user_id")
            check_id(item, "item_id")
            ts = parse_ts(row["time"])
        except ValueError as e:
            problems.report(path, line, str(e))
            continue
        builder.add_user(user)
        builder.add_item(item)
        if category:
            builder.add_item_category(item, builder.add_category_path([category], [category]))
        builder.add_event(model.PURCHASED, user, item, ts)
    return builder.build(f"amazon-din({path.name})", problems.rejected)
