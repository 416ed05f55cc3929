"""Shared parts of the loaders: error policy, line-numbered table reading, timestamps, and a
builder that collects nodes and events and produces an aggregated :class:`GraphSource`.

Loaders only build rows. Nothing here touches Neo4j: a file is parsed completely before
``graphstore.ingest.load_source`` writes anything, so a bad file (with the default
``on_error="raise"``) fails the load while the graph is still untouched.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Literal

from graphstore import model, text
from graphstore.errors import InputError
from graphstore.ids import MAX_ID_LENGTH, describe, excerpt, is_valid_id
from graphstore.records import GraphSource, Row, aggregate

ON_ERROR = ("raise", "reject")

#: Column separators a delimited file may use; ``detect_delimiter`` picks one of them.
DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {",": "','", ";": "';'", "\t": "'\\t' (tab)", "|": "'|'"}

#: Separator of the levels of a category path (``Electronics > Audio > Headphones``).
PATH_SEPARATOR = " > "


class Problems:
    """The error policy of one load: raise at the first bad row, or collect and skip it."""

    def __init__(self, on_error: str = "raise") -> None:
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, not {on_error!r}")
        self.on_error = on_error
        self.rejected: list[str] = []

    def report(self, path: Path | str, line: int | None, reason: str) -> None:
        """A bad row: raise :class:`InputError` (``raise``) or record ``file:line: reason``."""
        error = InputError(str(path), line, reason)
        if self.on_error == "raise":
            raise error
        self.rejected.append(str(error))


def fatal(path: Path | str, line: int | None, reason: str) -> InputError:
    """An error that makes the whole file unusable (missing file or column): always raised."""
    return InputError(str(path), line, reason)


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise fatal(path, None, f"{what} not found")
    return path


def _decode_errors(path: Path, line: int, error: UnicodeDecodeError) -> InputError:
    return fatal(path, line, f"cannot decode text ({error.reason}); wrong encoding?")


def check_id(value: str, what: str) -> str:
    """``value`` if it follows the id rule (:mod:`graphstore.ids`), else ``ValueError`` (an
    ``InvalidIdError``) naming ``what``: the loaders call it inside their row checks, so a bad
    id is reported as ``file:line: reason`` like any other bad value."""
    if is_valid_id(value):
        return value
    from graphstore.ids import InvalidIdError

    raise InvalidIdError(
        f"{what} {excerpt(value)} is not a valid id: {describe(value)} (ids: 1 to "
        f"{MAX_ID_LENGTH} ASCII letters, digits, '.', '_', ':', '-'; see graphstore/ids.py)"
    )


def delimiter_name(delimiter: str) -> str:
    return _DELIMITER_NAMES.get(delimiter, repr(delimiter))


def detect_delimiter(path: Path, encoding: str = "utf-8") -> str:
    """The column separator of a delimited file with a header: whichever of ``,`` ``;``
    tab ``|`` its header line holds most often (outside quotes); ``,`` for a one-column
    header. The header decides because data rows may hold separators inside values (a
    ``|``-separated list of categories in a comma-separated file)."""
    try:
        with path.open(newline="", encoding=encoding) as handle:
            header = handle.readline()
    except UnicodeDecodeError as e:
        raise _decode_errors(path, 1, e) from e
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in header:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])  # first of equals: "," wins ties
    return best if counts[best] else ","


def _missing_columns(
    path: Path, missing: Sequence[str], names: Sequence[str], delimiter: str
) -> InputError:
    shown = ", ".join(repr(m) for m in missing)
    reason = f"missing column {shown} (columns: {', '.join(names)})"
    others = [d for d in DELIMITERS if d != delimiter and any(d in n for n in names)]
    if others:
        other = others[0]
        reason += (
            f"; the header holds {delimiter_name(other)}: is the file {delimiter_name(other)}-"
            f"separated? (read with delimiter {delimiter_name(delimiter)}; `--delimiter` or "
            f"delimiter= sets it)"
        )
    return fatal(path, 1, reason)


def read_table(
    path: Path,
    *,
    required: Sequence[str] = (),
    delimiter: str | None = ",",
    encoding: str = "utf-8",
    fieldnames: Sequence[str] | None = None,
    strict_width: bool = True,
    quoting: Literal[0, 1, 2, 3] = csv.QUOTE_MINIMAL,
    problems: Problems | None = None,
) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a delimited text file as ``(line, {column: value})``; line is 1-based.

    With ``fieldnames=None`` the first line is the header (line 1; the first row is line 2);
    otherwise the file has no header and ``fieldnames`` names the columns. A missing required
    column always raises (the file cannot be read at all). A row with the wrong number of
    fields is reported to ``problems`` (raise or reject) and skipped. A record that spans
    several physical lines (quoted newlines) is numbered by its first line.
    ``delimiter=None``: detected from the header (:func:`detect_delimiter`). A missing
    column's error says when the header holds another separator.
    """
    if delimiter is None:
        delimiter = detect_delimiter(path, encoding)
    with path.open(newline="", encoding=encoding) as handle:
        reader = csv.reader(handle, delimiter=delimiter, quoting=quoting)
        end = 0
        try:
            if fieldnames is None:
                try:
                    header = next(reader)
                except StopIteration:
                    raise fatal(path, 1, "empty file: expected a header line") from None
                end = reader.line_num
                names = [h.strip().lstrip("\ufeff") for h in header]
            else:
                names = list(fieldnames)
            missing = [c for c in required if c not in names]
            if missing:
                raise _missing_columns(path, missing, names, delimiter)
            for fields in reader:
                line = end + 1
                end = reader.line_num
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue  # blank line
                if len(fields) != len(names) and strict_width:
                    reason = f"expected {len(names)} fields, found {len(fields)}"
                    if problems is None:
                        raise fatal(path, line, reason)
                    problems.report(path, line, reason)
                    continue
                yield line, dict(zip(names, fields, strict=False))
        except csv.Error as e:
            raise fatal(path, end + 1, f"malformed CSV: {e}") from e
        except UnicodeDecodeError as e:
            raise _decode_errors(path, end + 1, e) from e


def read_parquet(
    path: Path, *, required: Sequence[str] = ()
) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a Parquet file, numbered as the equivalent CSV would be (first row = line 2).

    Values are turned into strings so the same parsers apply. Needs ``pyarrow``.
    """
    try:
        import pyarrow.parquet as pq  # type: ignore[import-not-found, import-untyped]
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise fatal(path, None, "reading Parquet needs the 'pyarrow' package") from e
    table = pq.read_table(path)
    names = list(table.column_names)
    missing = [c for c in required if c not in names]
    if missing:
        raise fatal(path, 1, f"missing column {', '.join(repr(m) for m in missing)}")
    for index, record in enumerate(table.to_pylist()):
        yield index + 2, {k: _cell(v) for k, v in record.items()}


def _cell(value: object) -> str:
    """A Parquet value as the CSV text it stands for (a whole float column value 34.0 → 34:
    an integer column with nulls is read back as floats)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


#: Epoch numbers by magnitude: below 1e11 seconds (up to the year 5138), below 1e14
#: milliseconds, below 1e17 microseconds, below 1e20 nanoseconds (from 1973-03-03 on for the
#: sub-second units: smaller values are read as seconds).
EPOCH_UNITS = ((1e11, "s", 1.0), (1e14, "ms", 1e3), (1e17, "us", 1e6), (1e20, "ns", 1e9))


def epoch_unit(number: float) -> tuple[str, float]:
    """``(unit, divisor)`` of an epoch number, recognised by its magnitude."""
    for limit, unit, divisor in EPOCH_UNITS:
        if abs(number) < limit:
            return unit, divisor
    raise ValueError(
        f"epoch timestamp {number:.0f} is too large for seconds, milliseconds, microseconds "
        "or nanoseconds"
    )


def parse_ts(value: str) -> float:
    """Epoch seconds from an epoch number or ISO-8601 text (naive times are taken as UTC).

    An epoch number's unit is recognised by its magnitude (:data:`EPOCH_UNITS`): seconds,
    milliseconds, microseconds or nanoseconds; a value too large for any is refused."""
    return parse_ts_unit(value)[0]


def parse_ts_unit(value: str) -> tuple[float, str | None]:
    """``(epoch seconds, unit of the epoch number or None for ISO-8601 text)``."""
    raw = value.strip()
    if not raw:
        raise ValueError("empty timestamp")
    unit: str | None = None
    try:
        number = float(raw)
    except ValueError:
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            raise ValueError(
                f"bad timestamp {value!r} (want ISO-8601 or an epoch number)"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        ts = moment.timestamp()
    else:
        if not math.isfinite(number):
            raise ValueError(f"bad timestamp {value!r}")
        unit, divisor = epoch_unit(number)
        ts = number / divisor
    if not math.isfinite(ts):
        raise ValueError(f"bad timestamp {value!r}")
    return ts, unit


class Timestamps:
    """Parses one file's timestamps and holds it to one epoch unit: a file whose first epoch
    number was in milliseconds and a later one in seconds is refused at that line (a mixed
    log, or a value whose magnitude was misread)."""

    def __init__(self) -> None:
        self.unit: str | None = None
        self.first_line: int | None = None

    def parse(self, value: str, line: int) -> float:
        ts, unit = parse_ts_unit(value)
        if unit is None:
            return ts
        if self.unit is None:
            self.unit, self.first_line = unit, line
        elif unit != self.unit:
            raise ValueError(
                f"timestamp {value.strip()!r} reads as epoch {unit}, but line {self.first_line}'s"
                f" was in {self.unit}: one unit per file"
            )
        return ts


def parse_float(value: str, what: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"non-numeric {what} {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"non-numeric {what} {value!r}")
    return number


def parse_int(value: str, what: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise ValueError(f"non-numeric {what} {value!r}") from None


_TRUE = frozenset({"1", "true", "t", "yes", "y"})
_FALSE = frozenset({"0", "false", "f", "no", "n"})


def parse_bool(value: str, what: str) -> bool:
    folded = value.strip().lower()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    raise ValueError(f"bad {what} {value!r} (want true/false, yes/no or 1/0)")


def category_id(path: Sequence[str]) -> str:
    """The id of the category at the end of ``path``: the path itself, levels joined."""
    return PATH_SEPARATOR.join(path)


def split_path(value: str, separator: str = ">") -> list[str]:
    """``"Electronics > Audio>Headphones"`` → ``["Electronics", "Audio", "Headphones"]``."""
    return [" ".join(part.split()) for part in value.split(separator) if part.strip()]


def read_category_names(
    path: Path, *, delimiter: str | None = None, problems: Problems | None = None
) -> dict[str, str]:
    """Display names of categories from a table with columns ``id`` and ``name`` (any of
    the :data:`DELIMITERS`, detected unless given): for sources whose categories are bare
    numbers (``200``), so that segments and explanations can say ``Video games``."""
    problems = problems or Problems()
    names: dict[str, str] = {}
    for line, row in read_table(
        path, required=("id", "name"), delimiter=delimiter, problems=problems
    ):
        cid = (row.get("id") or "").strip()
        name = " ".join((row.get("name") or "").split())
        if not cid:
            problems.report(path, line, "empty category id")
        elif not name:
            problems.report(path, line, f"category {cid!r} has an empty name")
        elif cid in names:
            problems.report(path, line, f"duplicate category id {cid!r}")
        else:
            names[cid] = name
    return names


def name_categories(source: GraphSource, names: Mapping[str, str], file: str) -> GraphSource:
    """``source`` with the categories whose id is in ``names`` renamed; ids that name no
    category of the source are counted in ``skipped`` (``file`` says where they came from)."""
    categories = [dict(c) for c in source.categories]
    for row in categories:
        if row["id"] in names:
            row["name"] = names[row["id"]]
    known = {row["id"] for row in categories}
    unused = sum(1 for cid in names if cid not in known)
    skipped = dict(source.skipped)
    if unused:
        skipped[f"{file}: ids of no category in the source"] = unused
    return dataclasses.replace(source, categories=categories, skipped=skipped)


# Logs repeat the same query text many times and stemming is the slow part of a load.
_normalize_query = lru_cache(maxsize=1 << 16)(text.normalize_query)


@lru_cache(maxsize=1 << 14)
def _terms(words: str) -> tuple[str, ...]:
    return tuple(text.terms(words))


class SourceBuilder:
    """Collects nodes, links and raw events; :meth:`build` aggregates them into a source.

    Node rows keep the first occurrence of an id. Raw interactions are aggregated with
    :func:`graphstore.records.aggregate` (one row per user–target–type: count, latest ts,
    summed weight) except that a ``RATED`` row's weight is the *latest* rating, not a sum.
    """

    def __init__(self) -> None:
        self.users: dict[str, Row] = {}
        self.items: dict[str, Row] = {}
        self.queries: dict[str, str] = {}
        self.categories: dict[str, Row] = {}
        self.item_terms: dict[tuple[str, str], None] = {}
        self.item_categories: dict[tuple[str, str], None] = {}
        self.events: dict[str, list[tuple[str, str, float, float]]] = {}
        self.led_to: Counter[tuple[str, str]] = Counter()

    # Nodes ---------------------------------------------------------------------------------

    def add_user(
        self,
        user_id: str,
        *,
        age: int | None = None,
        gender: str | None = None,
        occupation: str | None = None,
        consent: bool = True,
    ) -> None:
        if user_id in self.users:
            return
        check_id(user_id, "user id")  # the loaders check first, with file and line
        row = {"id": user_id, "age": age, "gender": gender, "occupation": occupation}
        row["consent"] = consent
        self.users[user_id] = row

    def add_item(
        self,
        item_id: str,
        *,
        title: str | None = None,
        price: float | None = None,
        term_text: str | None = None,
    ) -> None:
        """An item; its terms come from ``term_text`` (default: the title)."""
        if item_id in self.items:
            return
        check_id(item_id, "item id")  # the loaders check first, with file and line
        self.items[item_id] = {"id": item_id, "title": title, "price": price}
        self.add_item_terms(item_id, term_text if term_text is not None else title or "")

    def add_item_terms(self, item_id: str, words: str) -> None:
        for term in _terms(words):
            self.item_terms.setdefault((item_id, term), None)

    def add_query(self, raw: str) -> str | None:
        """The query node for raw text; returns its id, or None if it has no content terms."""
        query_id = _normalize_query(raw)
        if not query_id:
            return None
        self.queries.setdefault(query_id, " ".join(raw.split()))
        return query_id

    def add_category_path(self, names: Sequence[str], ids: Sequence[str] | None = None) -> str:
        """Categories along a path (root first) with their parent links; returns the leaf id.

        Without ``ids`` a level's id is the path up to it (``Electronics > Audio``), so equal
        names under different parents stay distinct categories.
        """
        if not names:
            raise ValueError("empty category path")
        parent: str | None = None
        for level, name in enumerate(names):
            cid = ids[level] if ids is not None else category_id(names[: level + 1])
            self.categories.setdefault(cid, {"id": cid, "name": name, "parent": parent})
            parent = cid
        assert parent is not None
        return parent

    def add_item_category(self, item_id: str, category: str) -> None:
        self.item_categories.setdefault((item_id, category), None)

    # Links ---------------------------------------------------------------------------------

    def add_event(self, rel: str, user: str, target: str, ts: float, weight: float = 1.0) -> None:
        if rel not in (*model.INTERACTIONS, model.SEARCHED):
            raise ValueError(f"unknown interaction type {rel!r}")
        self.events.setdefault(rel, []).append((user, target, ts, weight))

    def add_led_to(self, query_id: str, item_id: str) -> None:
        self.led_to[(query_id, item_id)] += 1

    # Result --------------------------------------------------------------------------------

    def build(
        self, name: str, rejected: Iterable[str] = (), skipped: dict[str, int] | None = None
    ) -> GraphSource:
        interactions: dict[str, list[Row]] = {}
        for rel in (model.SEARCHED, *model.INTERACTIONS):
            events = self.events.get(rel)
            if not events:
                continue
            rows = list(aggregate(events))
            if rel == model.RATED:
                latest: dict[tuple[str, str], tuple[float, float]] = {}
                for user, target, ts, rating in events:
                    seen = latest.get((user, target))
                    if seen is None or ts >= seen[0]:
                        latest[(user, target)] = (ts, rating)
                for row in rows:
                    row["weight"] = latest[(row["user"], row["target"])][1]
            interactions[rel] = rows
        query_terms = [{"query": q, "term": t} for q in self.queries for t in q.split()]
        item_terms = [{"item": i, "term": t} for i, t in self.item_terms]
        term_ids = dict.fromkeys([r["term"] for r in item_terms] + [r["term"] for r in query_terms])
        return GraphSource(
            name=name,
            users=list(self.users.values()),
            items=list(self.items.values()),
            queries=[{"id": q, "text": raw} for q, raw in self.queries.items()],
            terms=[{"id": t} for t in term_ids],
            categories=list(self.categories.values()),
            interactions=dict(interactions),
            led_to=[{"query": q, "item": i, "count": c} for (q, i), c in self.led_to.items()],
            query_terms=query_terms,
            item_terms=item_terms,
            item_categories=[{"item": i, "category": c} for i, c in self.item_categories],
            rejected=list(rejected),
            skipped={k: n for k, n in (skipped or {}).items() if n},
        )
