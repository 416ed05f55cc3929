"""Best Buy "small" search → click log (Kaggle ACM SF hackathon, Xbox 360 games) → graph rows.

Input: the ``bestbuy-xbox-small`` folder (see its ``SOURCE.md``):

``labelled_split/train.csv`` and ``labelled_split/test.csv``
    ``user,sku,category,query,click_time,query_time`` (header = line 1); one row = a user
    searched ``query`` at ``query_time`` and clicked ``sku`` at ``click_time``
    (``YYYY-MM-DD hh:mm:ss.mmm``, taken as UTC).
``kaggle_test/test.csv``
    the same without ``sku`` (the competition's hidden answers): searches only.
``derived/product.csv`` (latin-1, optional)
    ``sku,productId,name,format,shortDescription,manufacturer,genre,…`` built by a third
    party from the product XML: ``name`` is a lower-cased **bag of words** (sorted), not the
    original title. Every SKU appears twice; the first row is used.

Which files: ``include=("train",)`` by default, so the labelled 20 % split (``"test"``) and the
unlabelled Kaggle set (``"kaggle_test"``) stay out of the graph a model is trained on; pass
e.g. ``include=("train", "test", "kaggle_test")`` to add them. ``limit_users=N`` keeps only the
first ``N`` distinct users in file order (a small, deterministic subset for tests).

Mapping:

* user → ``User`` (id = the 40-hex hash; no features, the log has none).
* sku → ``Item`` (``title`` = the derived ``name`` bag of words, no price); its terms are the
  words of ``name`` (plus ``shortDescription`` with ``description_terms=True``). Clicked SKUs
  missing from ``product.csv`` (about 5 %) become items with an id only.
* ``category`` (always ``abcat0701002``, Xbox 360 games) → root ``Category``; the product's
  ``genre`` (whitespace and case folded) → a child category ``abcat0701002 > racing`` …;
  an item is ``IN_CATEGORY`` of its genre, or of the root when it has none.
* each labelled row → ``(:User)-[:SEARCHED {ts: query_time}]->(:Query)``,
  ``(:User)-[:CLICKED {ts: click_time}]->(:Item)`` and ``(:Query)-[:LED_TO]->(:Item)``;
  a Kaggle-test row → ``SEARCHED`` only. The query id is
  :func:`graphstore.sources.text.normalize_query` of the raw text (which is kept as ``text``); a
  query with no content terms adds no ``Query``/``SEARCHED``/``LED_TO`` (the click stays).

There are no purchases, views, ratings or demographics in this source. A row with an empty
user or sku, or a bad timestamp, is an ``InputError`` (``file:line: reason``), or with
``on_error="reject"`` is skipped and listed in ``GraphSource.rejected``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from graphstore import model
from graphstore.records import GraphSource
from graphstore.sources.loaders.builder import SourceBuilder
from graphstore.sources.loaders.categories import category_id
from graphstore.sources.loaders.tables import Problems, check_id, read_table, require_file
from graphstore.sources.loaders.values import parse_ts

#: include name → (file relative to the folder, whether it has the clicked sku).
SPLITS: dict[str, tuple[str, bool]] = {
    "train": ("labelled_split/train.csv", True),
    "test": ("labelled_split/test.csv", True),
    "kaggle_test": ("kaggle_test/test.csv", False),
}
PRODUCTS = "derived/product.csv"
ROOT_CATEGORY = "abcat0701002"
CATEGORY_NAMES = {ROOT_CATEGORY: "Xbox 360 Games"}


def load(
    path: Path,
    *,
    on_error: str = "raise",
    include: Sequence[str] = ("train",),
    limit_users: int | None = None,
    description_terms: bool = False,
) -> GraphSource:
    """Parse the ``bestbuy-xbox-small`` folder ``path`` into a :class:`GraphSource`."""
    directory = Path(path)
    unknown = [name for name in include if name not in SPLITS]
    if unknown:
        raise ValueError(f"unknown Best Buy split(s) {unknown} (want some of {list(SPLITS)})")
    problems = Problems(on_error)
    builder = SourceBuilder()

    # Catalogue (derived): first row of each sku.
    products = directory / PRODUCTS
    if products.is_file():
        for line, row in read_table(
            products, required=("sku", "name"), encoding="latin-1", problems=problems
        ):
            sku = row["sku"].strip()
            if not sku:
                problems.report(products, line, "empty sku")
                continue
            if sku in builder.items:
                continue
            try:
                check_id(sku, "sku")
            except ValueError as e:
                problems.report(products, line, str(e))
                continue
            name = " ".join(row["name"].split())
            words = name
            if description_terms:
                words = f"{name} {row.get('shortDescription', '')}"
            builder.add_item(sku, title=name or None, term_text=words)
            genre = " ".join((row.get("genre") or "").lower().split())
            root = builder.add_category_path([CATEGORY_NAMES[ROOT_CATEGORY]], [ROOT_CATEGORY])
            if genre:
                genre_name = " ".join((row.get("genre") or "").split())
                leaf = builder.add_category_path(
                    [CATEGORY_NAMES[ROOT_CATEGORY], genre_name],
                    [ROOT_CATEGORY, category_id([ROOT_CATEGORY, genre])],
                )
                builder.add_item_category(sku, leaf)
            else:
                builder.add_item_category(sku, root)

    users: set[str] = set()
    for split in include:
        relative, labelled = SPLITS[split]
        file = require_file(directory / relative, f"Best Buy {split} file")
        required: tuple[str, ...] = ("user", "category", "query", "click_time", "query_time")
        if labelled:
            required = ("user", "sku", *required[1:])
        for line, row in read_table(file, required=required, problems=problems):
            try:
                user = row["user"].strip()
                if not user:
                    raise ValueError("empty user")
                sku = row["sku"].strip() if labelled else ""
                if labelled and not sku:
                    raise ValueError("empty sku")
                check_id(user, "user")
                if labelled:
                    check_id(sku, "sku")
                category = row["category"].strip()
                query_ts = parse_ts(row["query_time"])
                click_ts = parse_ts(row["click_time"])
            except ValueError as e:
                problems.report(file, line, str(e))
                continue
            if user not in users:
                if limit_users is not None and len(users) >= limit_users:
                    continue
                users.add(user)
            builder.add_user(user)
            query_id = builder.add_query(row["query"])
            if query_id:
                builder.add_event(model.SEARCHED, user, query_id, query_ts)
            if not labelled:
                continue
            if sku not in builder.items:
                builder.add_item(sku)
                if category:
                    name = CATEGORY_NAMES.get(category, category)
                    builder.add_item_category(sku, builder.add_category_path([name], [category]))
            builder.add_event(model.CLICKED, user, sku, click_ts)
            if query_id:
                builder.add_led_to(query_id, sku)

    label = f"bestbuy({directory}, include={','.join(include)}"
    label += f", limit_users={limit_users})" if limit_users is not None else ")"
    return builder.build(label, problems.rejected)
