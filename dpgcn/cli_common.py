"""Helpers shared by the ``dpgcn`` command modules (kept apart so sub-command modules never
import :mod:`dpgcn.cli` itself)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from dpgcn import services
from dpgcn.settings import get_settings

if TYPE_CHECKING:
    from neo4j import Driver


#: ``--set PATH=VALUE`` (repeatable): a TrainConfig setting by its dotted path, the value as
#: JSON (``0.5``, ``true``, ``[10, 5]``) or else as a string (``node``).
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="PATH=VALUE",
        help="Any TrainConfig setting by its dotted path, e.g. --set optim.lr=0.001 "
        "--set model.dpgcn.relation_mean=node (repeatable; docs/configuration.md).",
    ),
]


def setting_changes(items: list[str] | None) -> dict[str, object]:
    """The TrainConfig changes of ``--set PATH=VALUE`` options (exit code 2 for a malformed
    one; the values are checked by ``TrainConfig.replace``)."""
    out: dict[str, object] = {}
    for item in items or []:
        path, sep, text = item.partition("=")
        if not sep or not path.strip():
            fail(f"--set {item!r}: expected PATH=VALUE, e.g. --set optim.lr=0.001", code=2)
        try:
            value: object = json.loads(text)
        except json.JSONDecodeError:
            value = text
        out[path.strip()] = value
    return out


def fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def graph_driver() -> Driver:
    """A driver for the configured Neo4j, or a clear CLI error."""
    from graphstore.driver import connect
    from graphstore.errors import GraphStoreError

    settings = get_settings()
    try:
        conn = services.neo4j_connection(settings)
        return connect(conn.uri, conn.user, conn.password)
    except (services.ServiceError, GraphStoreError) as e:
        fail(str(e))
