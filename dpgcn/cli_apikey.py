"""``dpgcn apikey``: create, list and revoke API keys."""

from __future__ import annotations

import typer

apikey_app = typer.Typer(help="Manage API keys (scopes read, write, admin).", no_args_is_help=True)
