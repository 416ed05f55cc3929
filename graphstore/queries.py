"""Named Cypher statements from the ``cypher`` package, loaded by name and cached."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources


class UnknownQueryError(KeyError):
    pass


@lru_cache(maxsize=None)
def load(name: str) -> str:
    """The text of ``cypher/<name>.cypher`` (e.g. ``"ingest/merge_users"``)."""
    if ".." in name or name.startswith("/"):
        raise UnknownQueryError(name)
    path = resources.files("cypher").joinpath(f"{name}.cypher")
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise UnknownQueryError(f"no Cypher statement named {name!r}") from e


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
