"""``dpgcn apikey``: create, list and revoke API keys."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from dpgcn.cli_common import fail, graph_driver
from dpgcn.settings import get_settings

apikey_app = typer.Typer(help="Manage API keys (scopes read, write, admin).", no_args_is_help=True)


@apikey_app.command("create")
def create(
    scope: Annotated[str, typer.Option(help="read < write < admin.")] = "read",
    name: Annotated[str | None, typer.Option(help="A label to recognise the key by.")] = None,
) -> None:
    """Create a key; its secret is shown once (the last line printed) and stored only hashed."""
    from graphstore import apikeys
    from graphstore.errors import GraphStoreError
    from graphstore.schema import apply_schema

    if scope not in apikeys.SCOPES:
        fail(f"--scope must be one of {', '.join(apikeys.SCOPES)}", code=2)
    db = get_settings().neo4j.database
    with graph_driver() as driver:
        try:
            apply_schema(driver, db)
            key_id, key = apikeys.create_key(driver, scope, name, db)
        except GraphStoreError as e:
            fail(str(e))
    typer.echo(f"created API key {key_id} (scope {scope}); store it now, it is not shown again:")
    typer.echo(key)


@apikey_app.command("list")
def list_keys() -> None:
    """Every key: id, scope, name, created, revoked (never the secret or its hash)."""
    from graphstore import apikeys
    from graphstore.errors import GraphStoreError

    with graph_driver() as driver:
        try:
            keys = apikeys.list_keys(driver, get_settings().neo4j.database)
        except GraphStoreError as e:
            fail(str(e))
    if not keys:
        typer.echo("no API keys")
        return
    typer.echo(f"{'id':14} {'scope':6} {'created (UTC)':20} {'revoked':8} name")
    for k in keys:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(k["created_at"] or 0))
        typer.echo(
            f"{k['id']:14} {k['scope']:6} {created:20} {'yes' if k['revoked'] else 'no':8} "
            f"{k['name'] or ''}"
        )


@apikey_app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="The key's id (from `list`).")]) -> None:
    """Revoke a key (the API stops accepting it within DPGCN_API_KEY_CACHE_S seconds)."""
    from graphstore import apikeys
    from graphstore.errors import GraphStoreError

    with graph_driver() as driver:
        try:
            found = apikeys.revoke_key(driver, key_id, get_settings().neo4j.database)
        except GraphStoreError as e:
            fail(str(e))
    if not found:
        fail(f"no API key with id {key_id!r}")
    typer.echo(f"revoked API key {key_id}")
