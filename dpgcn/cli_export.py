"""``dpgcn export``: write the graph, or part of it, in the training file format."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dpgcn.cli_common import fail, graph_driver
from dpgcn.settings import get_settings


def _user_ids(value: str) -> list[str]:
    """``u1,u2`` or ``@file`` (one id per line)."""
    if value.startswith("@"):
        path = Path(value[1:])
        if not path.is_file():
            fail(f"--users: no file {path}", code=2)
        ids = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    else:
        ids = [part.strip() for part in value.split(",")]
    ids = [i for i in ids if i]
    if not ids:
        fail("--users names no user ids", code=2)
    return ids


def _time(value: str | None, option: str) -> float | None:
    from graphstore.sources.loaders.values import parse_ts

    if value is None:
        return None
    try:
        return parse_ts(value)
    except ValueError as e:
        fail(f"{option}: {e}", code=2)


def export(
    out: Annotated[Path, typer.Option("--out", help="Export directory (replaced atomically).")],
    users: Annotated[
        str | None,
        typer.Option(
            "--users", help="k-hop export around these users: 'u1,u2' or '@file' (one per line)."
        ),
    ] = None,
    hops: Annotated[int, typer.Option("--hops", min=0, help="Hops around --users.")] = 1,
    segment: Annotated[
        str | None, typer.Option("--segment", help="Export the members of this segment id.")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only interactions at/after this time (ISO-8601 or epoch)."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="Only interactions before this time (ISO-8601 or epoch)."),
    ] = None,
) -> None:
    """Export the graph (consenting users only) to graph.npz + meta.json; the selection is
    recorded in meta.json."""
    from graphstore.errors import GraphStoreError
    from graphstore.export import export_subgraph

    if users is not None and segment is not None:
        fail("choose --users or --segment, not both", code=2)
    user_ids = _user_ids(users) if users is not None else None
    start, end = _time(since, "--since"), _time(until, "--until")
    with graph_driver() as driver:
        try:
            summary = export_subgraph(
                driver,
                out,
                database=get_settings().neo4j.database,
                users=user_ids,
                hops=hops,
                segment=segment,
                since=start,
                until=end,
            )
        except GraphStoreError as e:
            fail(str(e))
    typer.echo(
        f"exported {summary['edges']} edges to {summary['dir']} ({summary['seconds']:.1f} s)"
    )
    for label, n in summary["nodes"].items():
        typer.echo(f"  {label:10} {n:>9}")
