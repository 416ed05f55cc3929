"""The ``dpgcn`` command line. User-facing output is printed here and nowhere else."""

from __future__ import annotations

import json
import logging
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from dpgcn import services
from dpgcn.logs import configure_logging
from dpgcn.settings import get_settings

app = typer.Typer(help="DP-GCN graph recommender on Neo4j.", no_args_is_help=True)
services_app = typer.Typer(help="Manage Neo4j and Redis (local, or external via env).",
                           no_args_is_help=True)
load_app = typer.Typer(help="Load data into the graph.", no_args_is_help=True)
app.add_typer(services_app, name="services")
app.add_typer(load_app, name="load")

logger = logging.getLogger(__name__)


def fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    configure_logging("DEBUG" if verbose else get_settings().log_level)


# ------------------------------------------------------------------------------------ services


@services_app.command("up")
def services_up() -> None:
    """Start the managed Neo4j and Redis (no-op when running); wait until both answer."""
    settings = get_settings()
    try:
        services.up(settings)
    except services.ServiceError as e:
        fail(str(e))
    _print_status(services.status(settings, wait=10.0))


@services_app.command("down")
def services_down() -> None:
    """Stop the managed Neo4j and Redis; data stays in DPGCN_HOME."""
    stopped = services.down(get_settings())
    typer.echo("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@services_app.command("status")
def services_status(
    wait: Annotated[float, typer.Option(help="Seconds to wait for each to answer.")] = 5.0,
) -> None:
    """Report each service, its address, Browser URL and where the credentials are."""
    report = services.status(get_settings(), wait=wait)
    _print_status(report)
    if not all(s.healthy for s in report):
        raise typer.Exit(1)


def _print_status(report: list[services.ServiceStatus]) -> None:
    settings = get_settings()
    for s in report:
        mark = "healthy" if s.healthy else "DOWN"
        kind = "managed" if s.managed else "external"
        line = f"{s.name:6} {mark:8} ({kind}) {s.detail}"
        if s.pid:
            line += f" pid={s.pid}"
        if s.log and not s.healthy:
            line += f" log={s.log}"
        typer.echo(line)
    if settings.neo4j.managed:
        spec = services.neo4j_spec(settings)
        typer.echo(f"neo4j  user=neo4j password in {spec.password_file} "
                   "(or `dpgcn services env`)")


@services_app.command("env")
def services_env() -> None:
    """Print `export` lines for NEO4J_URI/USER/PASSWORD and REDIS_URL."""
    settings = get_settings()
    try:
        conn = services.neo4j_connection(settings)
        url = services.redis_url(settings)
    except services.ServiceError as e:
        fail(str(e))
    for key, value in (
        ("NEO4J_URI", conn.uri),
        ("NEO4J_USER", conn.user),
        ("NEO4J_PASSWORD", conn.password),
        ("NEO4J_DATABASE", conn.database),
        ("REDIS_URL", url),
    ):
        typer.echo(f"export {key}={shlex.quote(value)}")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()


__all__ = ["app", "main", "json", "Path"]
