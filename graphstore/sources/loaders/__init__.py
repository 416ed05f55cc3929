"""Loaders: one module per source, each turning files into a :class:`GraphSource`.

Every loader module exposes ``load(path, **options) -> GraphSource`` and documents its input
format in its docstring (see also ``docs/loaders.md``). Loaders only parse and build rows —
nothing touches Neo4j until :func:`graphstore.ingest.load_source` writes the result — so a bad
file fails the load (``graphstore.errors.InputError`` naming file, line and reason) before
anything is written. With ``on_error="reject"`` bad rows are skipped and listed in
``GraphSource.rejected`` instead. Interactions are aggregated per user–target–type, so loading
the same files twice leaves the graph unchanged.

>>> source = load_dataset("movielens", Path("../shared/data/ml-100k"))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from graphstore.records import GraphSource
from graphstore.sources.loaders import amazon, bestbuy, generic, jdsearch, movielens

Loader = Callable[..., GraphSource]

#: Source name → its ``load(path, **options)``.
LOADERS: dict[str, Loader] = {
    "generic": generic.load,
    "movielens": movielens.load,
    "bestbuy": bestbuy.load,
    "jdsearch": jdsearch.load,
    "amazon": amazon.load,
}


def load_dataset(name: str, path: Path | str, **options: Any) -> GraphSource:
    """Parse the dataset at ``path`` with the loader called ``name`` (a key of ``LOADERS``)."""
    try:
        loader = LOADERS[name]
    except KeyError:
        raise ValueError(
            f"unknown dataset loader {name!r} (want one of {sorted(LOADERS)})"
        ) from None
    return loader(Path(path), **options)


__all__ = ["LOADERS", "Loader", "load_dataset"]
