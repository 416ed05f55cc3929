"""Reading a source's tables: the error policy of a load (raise or reject, with file and line),
delimited text with a header or named columns, Parquet, and the id check the loaders apply.

Nothing here touches Neo4j: a file is parsed completely before ``graphstore.ingest.load_source``
writes anything, so a bad file (with the default ``on_error="raise"``) fails the load while
the graph is still untouched.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Literal

from graphstore.errors import InputError
from graphstore.ids import MAX_ID_LENGTH, InvalidIdError, describe, excerpt, is_valid_id

ON_ERROR = ("raise", "reject")

#: Column separators a delimited file may use; ``detect_delimiter`` picks one of them.
DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {",": "','", ";": "';'", "\t": "'\\t' (tab)", "|": "'|'"}


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
