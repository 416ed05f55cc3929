"""``dpgcn privacy``: privacy maintenance (erased users in training artifacts)."""

from __future__ import annotations

import typer

from dpgcn.cli_common import fail, graph_driver
from dpgcn.settings import get_settings

privacy_app = typer.Typer(help="Privacy maintenance.", no_args_is_help=True)


@privacy_app.command("scrub")
def scrub() -> None:
    """Remove erased users from every run's files in the artifacts directory now.

    Beat does the same every DPGCN_PRIVACY_SCRUB_EVERY_S seconds."""
    from graphstore.errors import GraphStoreError
    from training.errors import ModelDirError
    from workers.privacy import scrub_artifacts

    settings = get_settings()
    with graph_driver() as driver:
        try:
            summary = scrub_artifacts(driver, settings.artifacts_dir, settings.neo4j.database)
        except (GraphStoreError, ModelDirError) as e:
            fail(str(e))
    typer.echo(
        f"{summary['tombstones']} erased user(s) known; checked {summary['runs']} run(s); "
        f"removed {summary['users']} user row(s) from {summary['scrubbed_runs']} run(s)"
    )
