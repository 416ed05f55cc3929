"""Helpers shared by the ``dpgcn`` command modules (kept apart so sub-command modules never
import :mod:`dpgcn.cli` itself)."""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

import typer

from dpgcn import services
from dpgcn.settings import get_settings

if TYPE_CHECKING:
    from neo4j import Driver


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
