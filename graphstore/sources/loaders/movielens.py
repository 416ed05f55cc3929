"""MovieLens 100K (GroupLens ``ml-100k`` folder) → graph rows.

Input (the original release, no header lines, so the first row is line 1):

``u.user``
    ``user_id|age|gender|occupation|zip_code`` → ``User`` with the static features ``age``
    (integer), ``gender`` (M/F) and ``occupation``; the zip code is not used.
``u.item`` (latin-1)
    ``movie_id|title|release_date|video_release_date|IMDb_URL|`` and 19 genre flags (0/1)
    → ``Item`` with ``title`` (as given, e.g. ``Toy Story (1995)``) and no price. The words of
    the title, without the ``(year)``, become the item's ``Term`` nodes. Each genre whose
    flag is 1 is a ``Category`` (flat: id and name = the genre name, from ``u.genre`` when
    present) and the item goes ``IN_CATEGORY`` of it.
``u.data`` (tab-separated)
    ``user_id item_id rating unix_timestamp`` → ``(:User)-[:RATED]->(:Item)`` with
    ``weight`` = the rating (1–5) and ``ts`` = the timestamp.

Positive feedback: MovieLens has no clicks or purchases, and the recommender is trained on
implicit positive interactions. Following the common practice of treating high ratings as
positives, every rating ≥ ``positive_threshold`` (default 4, i.e. 4 and 5 stars) is *also* a
``CLICKED`` edge (weight 1, same ts); ``positive_threshold=None`` turns this off. There are no
queries, so no ``Query``/``SEARCHED``/``LED_TO``.

Ids are the dataset's own (``"1"`` … ``"943"`` for users, ``"1"`` … ``"1682"`` for items; the
labels keep them apart). Ratings naming an unknown user or movie, non-numeric fields or a
rating outside 1–5 are reported as ``InputError`` (``file:line: reason``) or, with
``on_error="reject"``, skipped and listed in ``GraphSource.rejected``.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from graphstore import model
from graphstore.records import GraphSource
from graphstore.sources.loaders.builder import SourceBuilder
from graphstore.sources.loaders.tables import Problems, check_id, fatal, read_table, require_file
from graphstore.sources.loaders.values import parse_int

GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
USER_COLUMNS = ("user_id", "age", "gender", "occupation", "zip_code")
ITEM_COLUMNS = (
    "movie_id",
    "title",
    "release_date",
    "video_release_date",
    "imdb_url",
    *(f"genre_{k}" for k in range(len(GENRES))),
)
RATING_COLUMNS = ("user_id", "item_id", "rating", "timestamp")
_YEAR = re.compile(r"\(\d{4}\)")


def _genres(directory: Path) -> tuple[str, ...]:
    path = directory / "u.genre"
    if not path.is_file():
        return GENRES
    by_index: dict[int, str] = {}
    for line, row in read_table(
        path, delimiter="|", fieldnames=("name", "index"), encoding="latin-1"
    ):
        try:
            by_index[parse_int(row["index"], "genre index")] = row["name"].strip()
        except ValueError as e:
            raise fatal(path, line, str(e)) from e
    if sorted(by_index) != list(range(len(GENRES))):
        raise fatal(path, None, f"expected genre indexes 0–{len(GENRES) - 1}")
    return tuple(by_index[k] for k in range(len(GENRES)))


def load(
    path: Path,
    *,
    on_error: str = "raise",
    positive_threshold: float | None = 4,
) -> GraphSource:
    """Parse the ``ml-100k`` folder ``path`` into a :class:`GraphSource`."""
    directory = Path(path)
    problems = Problems(on_error)
    builder = SourceBuilder()
    genres = _genres(directory)

    users_path = require_file(directory / "u.user", "u.user")
    for line, row in read_table(
        users_path, delimiter="|", fieldnames=USER_COLUMNS, problems=problems
    ):
        try:
            uid = row["user_id"].strip()
            if not uid:
                raise ValueError("empty user id")
            check_id(uid, "user id")
            if uid in builder.users:
                raise ValueError(f"duplicate user id {uid!r}")
            age = parse_int(row["age"], "age")
        except ValueError as e:
            problems.report(users_path, line, str(e))
            continue
        builder.add_user(
            uid,
            age=age,
            gender=row["gender"].strip() or None,
            occupation=row["occupation"].strip() or None,
        )

    items_path = require_file(directory / "u.item", "u.item")
    for line, row in read_table(
        items_path,
        delimiter="|",
        fieldnames=ITEM_COLUMNS,
        encoding="latin-1",
        quoting=csv.QUOTE_NONE,
        problems=problems,
    ):
        try:
            iid = row["movie_id"].strip()
            if not iid:
                raise ValueError("empty movie id")
            check_id(iid, "movie id")
            if iid in builder.items:
                raise ValueError(f"duplicate movie id {iid!r}")
            flags = [row[f"genre_{k}"].strip() for k in range(len(GENRES))]
            bad = [f for f in flags if f not in ("0", "1")]
            if bad:
                raise ValueError(f"genre flag {bad[0]!r} is not 0 or 1")
        except ValueError as e:
            problems.report(items_path, line, str(e))
            continue
        title = row["title"].strip()
        builder.add_item(iid, title=title or None, term_text=_YEAR.sub(" ", title))
        for genre, flag in zip(genres, flags, strict=True):
            if flag == "1":
                builder.add_item_category(iid, builder.add_category_path([genre], [genre]))

    ratings_path = require_file(directory / "u.data", "u.data")
    for line, row in read_table(
        ratings_path, delimiter="\t", fieldnames=RATING_COLUMNS, problems=problems
    ):
        try:
            user, item = row["user_id"].strip(), row["item_id"].strip()
            rating = parse_int(row["rating"], "rating")
            if not 1 <= rating <= 5:
                raise ValueError(f"rating {rating} outside 1–5")
            ts = float(parse_int(row["timestamp"], "timestamp"))
            if user not in builder.users:
                raise ValueError(f"dangling reference: user {user!r} is not in u.user")
            if item not in builder.items:
                raise ValueError(f"dangling reference: movie {item!r} is not in u.item")
        except ValueError as e:
            problems.report(ratings_path, line, str(e))
            continue
        builder.add_event(model.RATED, user, item, ts, float(rating))
        if positive_threshold is not None and rating >= positive_threshold:
            builder.add_event(model.CLICKED, user, item, ts)

    return builder.build(f"movielens({directory})", problems.rejected)
