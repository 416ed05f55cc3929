"""Category paths and display names: ids of the categories along a path, and names for
sources whose categories are bare numbers (read from an ``id,name`` table)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

from graphstore.records import GraphSource
from graphstore.sources.loaders.tables import Problems, read_table

#: Separator of the levels of a category path (``Electronics > Audio > Headphones``).
PATH_SEPARATOR = " > "


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
