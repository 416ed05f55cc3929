"""The generic format: three tables in one directory that any dataset can be converted to.

Files (delimited text with a header line, UTF-8; a ``.parquet`` file of the same name is read
instead when the CSV is absent and ``pyarrow`` is installed). The separator is ``,``, ``;``,
tab or ``|``, detected per file from its header line (``delimiter=`` forces one); a missing
column's error says when the header holds another separator than the one used.

``users.csv`` (optional)
    ``id`` (required), ``age`` (integer), ``gender``, ``occupation``, ``consent``
    (true/false, yes/no, 1/0; empty = true). Every column but ``id`` may be left out or empty.
    Without this file users are created from ``events.csv`` with no features; with it, an
    event naming a user that is not in it is a dangling reference.
``items.csv`` (required)
    The catalogue: ``id`` (required), ``title``, ``price`` (number), ``category``. Every row
    becomes an ``Item``, also items that no event names (they have no interactions but can
    be recommended from their terms and categories); an event naming an item that is not
    here is a dangling reference. The title's words become the item's terms. ``category`` is
    a path whose levels are separated by ``>`` (``Electronics > Audio > Headphones``),
    creating the hierarchy; several paths are separated by ``|`` (so in a ``|``-separated
    file, quote such a value). The item is put in the last category of each path.
``categories.csv`` (optional)
    ``id``, ``name``: display names of categories, for data whose categories are codes
    (``200`` → ``Video games``). ``id`` is the category's id in the graph: the path up to
    that level as written in ``items.csv`` (``200``, or ``200 > 594`` for a second level).
    Ids that no item uses are counted in ``GraphSource.skipped``.
``events.csv`` (required)
    ``user``, ``type``, ``ts`` (required); ``item``, ``query``, ``rating``, ``event_id``
    (optional columns). ``type`` is one of ``search``, ``view``, ``click``, ``purchase``,
    ``rate``; ``ts`` is ISO-8601 (naive = UTC) or an epoch number in seconds, milliseconds,
    microseconds or nanoseconds, recognised by its magnitude (``graphstore.sources.loaders.values.
    EPOCH_UNITS``); a file mixing epoch units is refused at the first row that differs.

User, item and event ids follow the id rule of :mod:`graphstore.ids` (1–128 ASCII letters,
digits, ``.``, ``_``, ``:``, ``-``); a row with another id is a bad row (``file:line``).

Event → graph mapping:

* ``search``: ``query`` required → ``(:User)-[:SEARCHED]->(:Query)`` (``item`` is ignored).
* ``view``: ``item`` required → ``VIEWED``.
* ``click`` / ``purchase``: ``item`` required → ``CLICKED`` / ``PURCHASED``; a non-empty
  ``query`` names the search the event followed and adds ``(:Query)-[:LED_TO]->(:Item)``.
  The search itself is a separate ``search`` row (set ``implied_searches=True`` to also
  count a ``SEARCHED`` edge for every click/purchase that carries a query).
* ``rate``: ``item`` and numeric ``rating`` required → ``RATED`` with weight = the latest
  rating of the pair.

Queries are identified by :func:`graphstore.sources.text.normalize_query` (their sorted stems); a
query with no content terms (only stop-words or punctuation) adds no ``Query`` node and no
``SEARCHED``/``LED_TO`` edge. Rows with an ``event_id`` already seen are skipped and counted
(``GraphSource.skipped``), so appending to a log and reloading never counts an event twice.
Interactions are aggregated per user–target–type, so loading the same directory twice gives
the same graph.

Bad input raises :class:`graphstore.errors.InputError` naming file, line (the header is line
1) and reason; with ``on_error="reject"`` bad rows are skipped and listed in
``GraphSource.rejected`` instead (a missing file or column still raises).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from graphstore import model
from graphstore.records import GraphSource
from graphstore.sources.loaders.builder import SourceBuilder
from graphstore.sources.loaders.categories import name_categories, read_category_names, split_path
from graphstore.sources.loaders.tables import Problems, check_id, fatal, read_parquet, read_table
from graphstore.sources.loaders.values import Timestamps, parse_bool, parse_float, parse_int

EVENT_TYPES = {
    "search": model.SEARCHED,
    "view": model.VIEWED,
    "click": model.CLICKED,
    "purchase": model.PURCHASED,
    "rate": model.RATED,
}


def _table(
    directory: Path,
    stem: str,
    required: Sequence[str],
    problems: Problems,
    optional: bool,
    delimiter: str | None = None,
) -> tuple[Path, Iterator[tuple[int, dict[str, str]]]] | None:
    csv_path = directory / f"{stem}.csv"
    parquet_path = directory / f"{stem}.parquet"
    if csv_path.is_file():
        rows = read_table(csv_path, required=required, delimiter=delimiter, problems=problems)
        return csv_path, rows
    if parquet_path.is_file():
        return parquet_path, read_parquet(parquet_path, required=required)
    if optional:
        return None
    raise fatal(csv_path, None, f"{stem}.csv not found (nor {stem}.parquet)")


def _text(row: dict[str, str], column: str) -> str:
    return (row.get(column) or "").strip()


def load(
    path: Path,
    *,
    on_error: str = "raise",
    implied_searches: bool = False,
    delimiter: str | None = None,
) -> GraphSource:
    """Parse the generic-format directory ``path`` into a :class:`GraphSource`.

    ``delimiter``: the column separator of every file; None detects it per file."""
    directory = Path(path)
    if not directory.is_dir():
        raise fatal(directory, None, "not a directory (want users.csv, items.csv, events.csv)")
    if delimiter is not None and len(delimiter) != 1:
        raise ValueError(f"delimiter must be one character, not {delimiter!r}")
    problems = Problems(on_error)
    builder = SourceBuilder()

    # Users -------------------------------------------------------------------------------
    users_table = _table(directory, "users", ("id",), problems, True, delimiter)
    if users_table is not None:
        file, rows = users_table
        for line, row in rows:
            try:
                uid = _text(row, "id")
                if not uid:
                    raise ValueError("empty id")
                check_id(uid, "user id")
                if uid in builder.users:
                    raise ValueError(f"duplicate user id {uid!r}")
                age_text = _text(row, "age")
                consent_text = _text(row, "consent")
                builder.add_user(
                    uid,
                    age=parse_int(age_text, "age") if age_text else None,
                    gender=_text(row, "gender") or None,
                    occupation=_text(row, "occupation") or None,
                    consent=parse_bool(consent_text, "consent") if consent_text else True,
                )
            except ValueError as e:
                problems.report(file, line, str(e))
    known_users = users_table is not None

    # Items -------------------------------------------------------------------------------
    items_table = _table(directory, "items", ("id",), problems, False, delimiter)
    assert items_table is not None
    file, rows = items_table
    for line, row in rows:
        try:
            iid = _text(row, "id")
            if not iid:
                raise ValueError("empty id")
            check_id(iid, "item id")
            if iid in builder.items:
                raise ValueError(f"duplicate item id {iid!r}")
            price_text = _text(row, "price")
            price = parse_float(price_text, "price") if price_text else None
            paths = [split_path(p) for p in _text(row, "category").split("|") if p.strip()]
        except ValueError as e:
            problems.report(file, line, str(e))
            continue
        builder.add_item(iid, title=_text(row, "title") or None, price=price)
        for levels in paths:
            if levels:
                builder.add_item_category(iid, builder.add_category_path(levels))

    # Events ------------------------------------------------------------------------------
    events_table = _table(directory, "events", ("user", "type", "ts"), problems, False, delimiter)
    assert events_table is not None
    file, rows = events_table
    seen_events: set[str] = set()
    timestamps = Timestamps()
    repeated = 0
    for line, row in rows:
        try:
            ts = timestamps.parse(row.get("ts") or "", line)
            repeated += not _event(row, ts, builder, known_users, seen_events, implied_searches)
        except ValueError as e:
            problems.report(file, line, str(e))
    skipped = {f"{file.name}: repeated event_id": repeated}
    source = builder.build(f"generic({directory})", problems.rejected, skipped)

    # Category names --------------------------------------------------------------------
    names_path = directory / "categories.csv"
    if names_path.is_file():
        names = read_category_names(names_path, delimiter=delimiter, problems=problems)
        source = name_categories(source, names, names_path.name)
        source.rejected = list(problems.rejected)
    return source


def _event(
    row: dict[str, str],
    ts: float,
    builder: SourceBuilder,
    known_users: bool,
    seen_events: set[str],
    implied_searches: bool,
) -> bool:
    """Validate one event row completely, then record it (a bad row changes nothing);
    False for a row whose ``event_id`` was seen before (skipped)."""
    user = _text(row, "user")
    kind = _text(row, "type").lower()
    item = _text(row, "item")
    raw_query = _text(row, "query")
    event_id = _text(row, "event_id")
    if not user:
        raise ValueError("empty user")
    check_id(user, "user")
    if kind not in EVENT_TYPES:
        wanted = ", ".join(EVENT_TYPES)
        raise ValueError(f"unknown event type {row.get('type', '')!r} (want one of {wanted})")
    if known_users and user not in builder.users:
        raise ValueError(f"dangling reference: user {user!r} is not in users")
    rating = 1.0
    if kind == "search":
        if not raw_query:
            raise ValueError("search event without query text")
    else:
        if not item:
            raise ValueError(f"{kind} event without item")
        check_id(item, "item")
        if item not in builder.items:
            raise ValueError(f"dangling reference: item {item!r} is not in items")
        if kind == "rate":
            rating = parse_float(_text(row, "rating"), "rating")
    if event_id:
        check_id(event_id, "event_id")
        if event_id in seen_events:
            return False
        seen_events.add(event_id)

    builder.add_user(user)
    rel = EVENT_TYPES[kind]
    if kind == "search":
        query_id = builder.add_query(raw_query)
        if query_id:
            builder.add_event(rel, user, query_id, ts)
        return True
    builder.add_event(rel, user, item, ts, rating)
    if raw_query and kind in ("click", "purchase"):
        query_id = builder.add_query(raw_query)
        if query_id:
            builder.add_led_to(query_id, item)
            if implied_searches:
                builder.add_event(model.SEARCHED, user, query_id, ts)
    return True


__all__ = ["EVENT_TYPES", "load"]
