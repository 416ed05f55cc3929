"""Named Cypher statements from the ``cypher`` package, loaded by name and cached.

With ``$DPGCN_CYPHER_TRACE`` set to a directory, every process appends the name of each
statement it loads for running to ``<dir>/<pid>.names`` (once per name and process); the test
suite uses this to require that every shipped statement ran (``tests/conftest.py``).
"""

from __future__ import annotations

import os
from functools import cache
from importlib import resources
from pathlib import Path

TRACE_ENV = "DPGCN_CYPHER_TRACE"


class UnknownQueryError(KeyError):
    pass


def read(name: str) -> str:
    """The text of ``cypher/<name>.cypher`` without recording it as used (inspection)."""
    if ".." in name or name.startswith("/"):
        raise UnknownQueryError(name)
    path = resources.files("cypher").joinpath(f"{name}.cypher")
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise UnknownQueryError(f"no Cypher statement named {name!r}") from e


@cache
def load(name: str) -> str:
    """The text of ``cypher/<name>.cypher`` (e.g. ``"ingest/merge_users"``), to be run."""
    text = read(name)
    _record(name)
    return text


def _record(name: str) -> None:
    directory = os.environ.get(TRACE_ENV)
    if not directory:
        return
    try:
        with open(Path(directory) / f"{os.getpid()}.names", "a", encoding="utf-8") as out:
            out.write(name + "\n")
    except OSError:
        pass


def traced_names(directory: Path) -> set[str]:
    """Every statement name recorded under a trace directory (all processes)."""
    found: set[str] = set()
    for path in Path(directory).glob("*.names"):
        found.update(line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    found.discard("")
    return found


def names() -> list[str]:
    """Every statement name the library ships."""
    root = resources.files("cypher")
    found: list[str] = []

    def walk(node, prefix: str) -> None:  # type: ignore[no-untyped-def]
        for child in node.iterdir():
            if child.is_dir():
                walk(child, f"{prefix}{child.name}/")
            elif child.name.endswith(".cypher"):
                found.append(prefix + child.name[: -len(".cypher")])

    walk(root, "")
    return sorted(found)


def _allowed() -> dict[str, frozenset[str]]:
    from graphstore import model

    labels = frozenset(model.NODE_LABELS) | {model.SEGMENT, model.MODEL}
    props = frozenset(p for slot in model.SLOTS for p in (model.embedding_property(slot),))
    return {
        "TYPE": frozenset(t for _, t, _ in model.EDGE_TYPES),
        "LABEL": labels,
        "SRC": labels,
        "DST": labels,
        "PROPERTY": props,
    }


@cache
def render(name: str, **placeholders: str) -> str:
    """A statement with ``__TYPE__``/``__LABEL__``/``__SRC__``/``__DST__``/``__PROPERTY__``
    placeholders filled from the graph model's whitelist (never from user input).

    Neo4j 5's dynamic ``$(...)`` labels would do the same but plan as full scans, so the
    whitelisted names are spliced in instead."""
    allowed = _allowed()
    statement = load(name)
    for key, value in placeholders.items():
        key = key.upper()
        if key not in allowed or value not in allowed[key]:
            raise ValueError(f"{value!r} is not an allowed {key.lower()} of the graph model")
        marker = f"__{key}__"
        if marker not in statement:
            raise UnknownQueryError(f"{name!r} has no {marker} placeholder")
        statement = "\n".join(
            line if line.lstrip().startswith("//") else line.replace(marker, value)
            for line in statement.split("\n")
        )
    return statement
