"""Labelled search logs: a ``user,sku,…,query[,query_time]`` test file (Best Buy's labelled
split) read as searches, the query normalised as the loaders normalise it. The rows are not
loaded into the graph; :func:`graphstore.export.export_query_task` maps them to an export's
rows (the query-conditioned task, ``query_task.npz``)."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import NamedTuple

from graphstore.errors import InputError
from graphstore.sources.loaders.values import parse_ts
from graphstore.sources.text import normalize_query


class LabelledSearch(NamedTuple):
    """One test row: who searched, the normalised query id ('' without content terms), the
    item they chose, and when (NaN unknown)."""

    user: str
    query: str
    item: str
    time: float


def read_labelled_searches(path: Path) -> list[LabelledSearch]:
    """The rows of a labelled test file; columns ``user``, ``sku`` and ``query`` are needed
    (a missing one is an :class:`InputError` naming the file), ``query_time`` is optional."""
    rows: list[LabelledSearch] = []
    with Path(path).open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"user", "sku", "query"} - set(reader.fieldnames or ())
        if missing:
            raise InputError(str(path), 1, f"missing column(s) {', '.join(sorted(missing))}")
        for row in reader:
            try:  # the search's time, NaN when the file has none
                ts = parse_ts(row.get("query_time") or "")
            except ValueError:
                ts = math.nan
            rows.append(
                LabelledSearch(
                    row["user"].strip(), normalize_query(row["query"] or ""), row["sku"].strip(), ts
                )
            )
    return rows
