"""JDsearch (Liu et al., SIGIR 2023; JD.com personalized product search) → graph rows.

Input: a folder with the two tab-separated files of the release (header = line 1; lists are
joined with ``_``; texts are anonymised **term ids** joined by the byte ``0x18``):

``product_meta_data*.txt``
    ``wid, name, brand_id, brand_name, cate_id_1, cate_name_1, … cate_id_4, cate_name_4,
    shop_id`` → ``Item`` (id = ``wid``, ``title`` = the name's term ids joined by spaces, no
    price); the name's term ids are the item's ``Term`` nodes. The 4-level path becomes
    ``Category`` nodes with id ``L<level>:<cate_id>`` (level 1–4, so equal ids on different
    levels stay apart), name = the category name's term ids, ``SUBCATEGORY_OF`` its parent;
    the item is ``IN_CATEGORY`` of its deepest level. A path stops at the first empty level.
``user_behavior_data*.txt``
    one line per user: ``query, candidate_wid_list, candidate_label_list, history_qry_list,
    history_wid_list, history_type_list, history_time_list``. The file has no user ids: the
    user on line ``n`` gets id ``u<n-1>`` (``u1`` is the first data line).

History → graph (``history_time_list`` holds time gaps, one more than the interactions; the
k-th interaction is at ``start_ts`` + the sum of the first k+1 gaps, and the test query at
``start_ts`` + the sum of all gaps — relative seconds, since the release has no clock time):

* ``ORD`` → ``PURCHASED``; ``CLICK`` → ``CLICKED``; ``FLW`` (follow/bookmark) → ``VIEWED``.
* ``CART`` (add to cart) → ``cart_as``, by default ``CLICKED``: a cart addition is at least a
  click on the product (the model's ``VIEWED`` is the weakest signal, a cart addition is
  stronger than a click but not a purchase). ``cart_as="VIEWED"`` or ``"PURCHASED"`` are
  accepted.
* an interaction whose ``history_qry_list`` entry is not ``-1`` followed that query: the query
  (term ids → :func:`graphstore.sources.text.normalize_query`) gets a ``Query`` node and a
  ``SEARCHED`` edge — one per *run* of consecutive interactions with the same query, since a
  session of several carts after one search is one search — and ``CLICK``/``CART``/``ORD``
  add ``(:Query)-[:LED_TO]->(:Item)``.

The test query and its labelled candidates are the dataset's evaluation target and are left
out by default; ``include_test=True`` adds ``SEARCHED`` for the test query and, for each
candidate with label 1 (click), 2 (cart) or 3 (purchase), ``CLICKED``/``cart_as``/
``PURCHASED`` plus ``LED_TO``. Label-0 candidates (shown, not clicked) add nothing.

Products referenced by the behaviour file but missing from the (sampled) metadata become
items with an id only. List lengths that do not match, unknown interaction types, bad labels
or gaps are ``InputError`` (``file:line: reason``) or, with ``on_error="reject"``, skip that
user's line and are listed in ``GraphSource.rejected``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from graphstore import model
from graphstore.records import GraphSource
from graphstore.sources.loaders.builder import SourceBuilder
from graphstore.sources.loaders.tables import Problems, check_id, fatal
from graphstore.sources.loaders.values import parse_int

TERM_SEPARATOR = "\x18"
META_COLUMNS = (
    "wid",
    "name",
    "brand_id",
    "brand_name",
    "cate_id_1",
    "cate_name_1",
    "cate_id_2",
    "cate_name_2",
    "cate_id_3",
    "cate_name_3",
    "cate_id_4",
    "cate_name_4",
    "shop_id",
)
BEHAVIOR_COLUMNS = (
    "query",
    "candidate_wid_list",
    "candidate_label_list",
    "history_qry_list",
    "history_wid_list",
    "history_type_list",
    "history_time_list",
)
HISTORY_TYPES = {"ORD": model.PURCHASED, "CLICK": model.CLICKED, "FLW": model.VIEWED}
LED_TO_TYPES = frozenset({"ORD", "CLICK", "CART"})
LABELS = {1: model.CLICKED, 3: model.PURCHASED}  # 2 (cart) → cart_as


def _words(value: str) -> str:
    """Term ids joined by 0x18 → space-separated (what ``graphstore.sources.text`` tokenizes)."""
    return " ".join(t for t in value.strip().split(TERM_SEPARATOR) if t)


def _find(directory: Path, pattern: str, given: str | None) -> Path:
    if given is not None:
        path = directory / given
        if not path.is_file():
            raise fatal(path, None, "file not found")
        return path
    matches = sorted(directory.glob(pattern))
    if not matches:
        raise fatal(directory / pattern, None, "no file matching this name")
    return matches[0]


def _lines(
    path: Path, columns: tuple[str, ...], problems: Problems
) -> Iterator[tuple[int, dict[str, str]]]:
    """Tab-separated rows without quoting (lines may be very long; the csv module's field
    limit would refuse them)."""
    with path.open(encoding="utf-8", newline="\n") as handle:
        try:
            header = handle.readline().rstrip("\r\n").split("\t")
            missing = [c for c in columns if c not in header]
            if missing:
                raise fatal(path, 1, f"missing column {', '.join(repr(c) for c in missing)}")
            for number, text in enumerate(handle, start=2):
                text = text.rstrip("\r\n")
                if not text.strip():
                    continue
                fields = text.split("\t")
                if len(fields) != len(header):
                    problems.report(
                        path, number, f"expected {len(header)} fields, found {len(fields)}"
                    )
                    continue
                yield number, dict(zip(header, fields, strict=True))
        except UnicodeDecodeError as e:
            raise fatal(path, None, f"cannot decode text ({e.reason})") from e


def load(
    path: Path,
    *,
    on_error: str = "raise",
    include_test: bool = False,
    cart_as: str = model.CLICKED,
    start_ts: float = 0.0,
    meta_file: str | None = None,
    behavior_file: str | None = None,
) -> GraphSource:
    """Parse a JDsearch folder ``path`` into a :class:`GraphSource`."""
    if cart_as not in (model.VIEWED, model.CLICKED, model.PURCHASED):
        raise ValueError(f"cart_as must be VIEWED, CLICKED or PURCHASED, not {cart_as!r}")
    directory = Path(path)
    problems = Problems(on_error)
    builder = SourceBuilder()
    history_types = {**HISTORY_TYPES, "CART": cart_as}
    labels = {**LABELS, 2: cart_as}

    meta = _find(directory, "product_meta_data*.txt", meta_file)
    for line, row in _lines(meta, META_COLUMNS, problems):
        wid = row["wid"].strip()
        if not wid:
            problems.report(meta, line, "empty wid")
            continue
        if wid in builder.items:
            problems.report(meta, line, f"duplicate wid {wid!r}")
            continue
        try:
            check_id(wid, "wid")
        except ValueError as e:
            problems.report(meta, line, str(e))
            continue
        name = _words(row["name"])
        builder.add_item(wid, title=name or None)
        names: list[str] = []
        ids: list[str] = []
        for level in range(1, 5):
            cid = row[f"cate_id_{level}"].strip()
            if not cid or cid in ("0", "-1"):
                break
            ids.append(f"L{level}:{cid}")
            names.append(_words(row[f"cate_name_{level}"]) or cid)
        if ids:
            builder.add_item_category(wid, builder.add_category_path(names, ids))

    behavior = _find(directory, "user_behavior_data*.txt", behavior_file)
    for line, row in _lines(behavior, BEHAVIOR_COLUMNS, problems):
        try:
            _user(row, f"u{line - 1}", builder, history_types, labels, include_test, start_ts)
        except ValueError as e:
            problems.report(behavior, line, str(e))
    return builder.build(f"jdsearch({directory})", problems.rejected)


def _split(value: str) -> list[str]:
    return value.strip().split("_") if value.strip() else []


def _user(
    row: dict[str, str],
    user: str,
    builder: SourceBuilder,
    history_types: dict[str, str],
    labels: dict[int, str],
    include_test: bool,
    start_ts: float,
) -> None:
    """Validate one user's line completely, then add it (a bad line adds nothing)."""
    queries = _split(row["history_qry_list"])
    wids = _split(row["history_wid_list"])
    types = _split(row["history_type_list"])
    gaps = [float(parse_int(g, "time gap")) for g in _split(row["history_time_list"])]
    if not len(queries) == len(wids) == len(types):
        raise ValueError(
            f"history lists differ in length (queries {len(queries)}, products {len(wids)}, "
            f"types {len(types)})"
        )
    if len(gaps) != len(wids) + 1:
        raise ValueError(f"history_time_list has {len(gaps)} gaps, want {len(wids) + 1}")
    bad = [t for t in types if t not in history_types]
    if bad:
        raise ValueError(f"unknown interaction type {bad[0]!r} (want ORD, CLICK, CART, FLW)")
    if any(not w for w in wids):
        raise ValueError("empty product id in history_wid_list")
    for wid in wids:
        check_id(wid, "product id in history_wid_list")
    candidates = _split(row["candidate_wid_list"])
    if include_test:
        for wid in candidates:
            check_id(wid, "product id in candidate_wid_list")
    raw_labels = _split(row["candidate_label_list"])
    if len(candidates) != len(raw_labels):
        raise ValueError(f"{len(candidates)} candidates but {len(raw_labels)} labels")
    candidate_labels: list[int] = []
    for raw in raw_labels:
        try:
            number = float(raw)
        except ValueError:
            raise ValueError(f"non-numeric candidate label {raw!r}") from None
        if number not in (0, 1, 2, 3):
            raise ValueError(f"candidate label {raw!r} is not 0, 1, 2 or 3")
        candidate_labels.append(int(number))

    builder.add_user(user)
    ts = start_ts
    previous: str | None = None
    for raw_query, wid, kind, gap in zip(queries, wids, types, gaps, strict=False):
        ts += gap
        builder.add_item(wid)
        builder.add_event(history_types[kind], user, wid, ts)
        query_id = None if raw_query.strip() == "-1" else builder.add_query(_words(raw_query))
        if query_id is not None:
            if query_id != previous:
                builder.add_event(model.SEARCHED, user, query_id, ts)
            if kind in LED_TO_TYPES:
                builder.add_led_to(query_id, wid)
        previous = query_id
    if not include_test:
        return
    test_ts = start_ts + sum(gaps)
    query_id = builder.add_query(_words(row["query"]))
    if query_id is not None:
        builder.add_event(model.SEARCHED, user, query_id, test_ts)
    for wid, label in zip(candidates, candidate_labels, strict=True):
        if label == 0:
            continue
        builder.add_item(wid)
        builder.add_event(labels[label], user, wid, test_ts)
        if query_id is not None:
            builder.add_led_to(query_id, wid)
