"""``dpgcn backup``: back up and restore the managed Neo4j and Redis (see dpgcn.backup)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dpgcn.cli_common import fail
from dpgcn.settings import get_settings

backup_app = typer.Typer(
    help="Back up and restore the managed Neo4j and Redis (one tar archive).",
    no_args_is_help=True,
)


@backup_app.command("create")
def create(
    target: Annotated[Path, typer.Argument(help="The archive to write (a new file).")],
) -> None:
    """Dump Neo4j (stopped for the dump, started again) and snapshot Redis into one archive."""
    from dpgcn import backup, services
    from graphstore.errors import GraphStoreError

    try:
        manifest = backup.create_backup(get_settings(), target)
    except (backup.BackupError, services.ServiceError, GraphStoreError) as e:
        fail(str(e))
    typer.echo(
        f"backup {target}: Neo4j {manifest['neo4j']['version']} store "
        f"{manifest['neo4j']['store_id']}, Redis {manifest['redis']['version']}, "
        f"{len(manifest['sha256'])} files"
    )


@backup_app.command("restore")
def restore(
    archive: Annotated[Path, typer.Argument(help="An archive made by `dpgcn backup create`.")],
) -> None:
    """Replace Neo4j's database and Redis' data with the archive's, then erase again the users
    and revoke again the keys logged since (the erasure and revocation logs)."""
    from dpgcn import backup, services
    from graphstore.errors import GraphStoreError

    if not archive.is_file():
        fail(f"{archive}: no such file", code=2)
    try:
        restored = backup.restore_backup(get_settings(), archive)
    except (backup.BackupError, services.ServiceError, GraphStoreError) as e:
        fail(str(e))
    r = restored.replay
    typer.echo(
        f"restored {archive} (made {restored.manifest['created_at_utc']}); replayed: "
        f"{r.users_erased} users erased, {r.tombstones} tombstones, {r.keys_revoked} keys "
        f"revoked, {r.stream_entries} feedback entries removed"
    )
