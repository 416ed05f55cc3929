"""``dpgcn segments``: user segments of the active model."""

from __future__ import annotations

import typer

segments_app = typer.Typer(help="User segments: compute, list, plot.", no_args_is_help=True)
