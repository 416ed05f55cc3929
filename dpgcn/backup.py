"""Backup and restore of the managed services: Neo4j (``neo4j-admin database dump``/``load``)
and Redis (its RDB snapshot), in one tar archive with a manifest.

The archive holds ``manifest.json`` (format, time, Neo4j and Redis versions, the dumped
store's id, the SHA-256 of every member), ``neo4j/<database>.dump`` and ``redis/dump.rdb``.
Neo4j Community dumps and loads only a stopped database, so both commands stop the managed
server (``dpgcn.services.stop_service``) for the dump or load and start it again; the admin
tool is the one the server is assembled with (``org.neo4j.cli.AdminTool`` on the server's
``lib`` classpath, with its home and config). Redis is saved with ``SAVE`` and copied; a
restore stops it, puts the snapshot in place both as ``dump.rdb`` and as the base of a fresh
append-only file (the managed Redis runs with ``appendonly yes`` and would otherwise start
from its newer AOF, or empty), and starts it.

A restore then replays the two logs kept outside the graph (``graphstore.statelog``): every
user whose salted id hash is in the erasure log is erased again (and the tombstones
re-created), every key in the revocation log revoked again, so that nothing erased or
revoked after the backup comes back. Processes that stay up (the API) notice the new store
themselves (``api.storewatch``).

External servers (``NEO4J_URI``/``REDIS_URL`` not managed here) are refused: docs/backup.md
describes the equivalent procedure.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import secrets
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dpgcn import neo4j_install, services
from dpgcn.settings import Settings
from dpgcn.streams import FEEDBACK_STREAM
from graphstore import queries, statelog
from graphstore.driver import connect, execute, run_autocommit
from graphstore.errors import GraphStoreError

logger = logging.getLogger(__name__)

FORMAT = 1
MANIFEST = "manifest.json"
REDIS_MEMBER = "redis/dump.rdb"
#: Transactions committed beyond the replaced store's last one, for the writes that clients
#: committed between that read and the server's stop.
ADVANCE_MARGIN = 1000


class BackupError(Exception):
    """A backup could not be made or restored."""


@dataclass(frozen=True)
class Replay:
    """What a restore re-applied from the logs."""

    users_erased: int
    tombstones: int
    keys_revoked: int
    skipped_salts: int
    stream_entries: int = 0


@dataclass(frozen=True)
class Restored:
    manifest: dict[str, Any]
    replay: Replay


def admin_argv(spec: neo4j_install.Neo4jServerSpec, java: str, *args: str) -> list[str]:
    """``neo4j-admin <args>`` for the managed server: the admin tool's main class on the
    server's own jars (run with :func:`dpgcn.neo4j_install.server_env`)."""
    return [java, "-cp", f"{spec.lib}/*", neo4j_install.ADMIN_TOOL, *args]


def _run_admin(spec: neo4j_install.Neo4jServerSpec, *args: str, timeout: float = 900) -> None:
    argv = admin_argv(spec, neo4j_install.find_java(), *args)
    logger.info("neo4j-admin %s", " ".join(args))
    result = subprocess.run(
        argv,
        env=neo4j_install.server_env(spec),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise BackupError(
            f"neo4j-admin {' '.join(args)} failed ({result.returncode}): "
            f"{(result.stdout + result.stderr).strip()[-2000:]}"
        )


def _require_managed(settings: Settings) -> None:
    if not services.neo4j_managed(settings) or not services.redis_managed(settings):
        raise BackupError(
            "backup create/restore handles the managed Neo4j and Redis only; for external "
            "servers (NEO4J_URI / REDIS_URL) follow docs/backup.md"
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _redis_client(settings: Settings) -> Any:
    import redis

    return redis.Redis.from_url(
        services.redis_url(settings), socket_connect_timeout=5, socket_timeout=120
    )


def store_id(settings: Settings) -> dict[str, str]:
    """The Neo4j store's id and creation time (``admin/get_store_id``)."""
    conn = services.neo4j_connection(settings)
    with connect(conn.uri, conn.user, conn.password) as driver:
        rows = execute(driver, "admin/get_store_id", database=conn.database, read=True)
    return {"store_id": str(rows[0]["store_id"]), "created": str(rows[0]["created"])}


def create_backup(settings: Settings, target: Path) -> dict[str, Any]:
    """Write one archive with Neo4j's dump and Redis' snapshot; returns its manifest. Neo4j is
    stopped for the dump and started again (also when the dump fails)."""
    _require_managed(settings)
    target = target.resolve()
    if target.exists():
        raise BackupError(f"{target} exists; choose a new file name")
    database = settings.neo4j.database
    spec = services.neo4j_spec(settings)
    store = store_id(settings)
    client = _redis_client(settings)
    try:
        info = client.info("server")
        redis_config = {
            key: str(client.config_get(key)[key])
            for key in ("dir", "dbfilename", "appenddirname", "appendfilename")
        }
        client.save()
    finally:
        client.close()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".backup-") as tmp:
        work = Path(tmp)
        (work / "redis").mkdir()
        shutil.copy2(Path(redis_config["dir"]) / redis_config["dbfilename"], work / REDIS_MEMBER)
        (work / "neo4j").mkdir()
        services.stop_service(settings, "neo4j")
        try:
            _run_admin(spec, "database", "dump", database, f"--to-path={work / 'neo4j'}")
        finally:
            services.start_service(settings, "neo4j")
        members = sorted(p.relative_to(work).as_posix() for p in work.rglob("*") if p.is_file())
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "created_at": time.time(),
            "created_at_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "neo4j": {"version": settings.neo4j.version, "database": database, **store},
            "redis": {
                "version": str(info.get("redis_version", "")),
                "appenddirname": redis_config["appenddirname"],
                "appendfilename": redis_config["appendfilename"],
            },
            "sha256": {name: _sha256(work / name) for name in members},
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        partial = target.with_name(target.name + ".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w") as archive:
            for name in [MANIFEST, *members]:
                archive.add(work / name, arcname=name)
            raw.flush()
            os.fsync(raw.fileno())
        partial.rename(target)
    logger.info("backup written to %s (store %s)", target, store["store_id"])
    return manifest


def read_manifest(archive: Path) -> dict[str, Any]:
    """The manifest of an archive (its members are not checked: see :func:`unpack`)."""
    try:
        with tarfile.open(archive) as tar:
            member = tar.extractfile(MANIFEST)
            if member is None:
                raise BackupError(f"{archive}: no {MANIFEST}")
            manifest: dict[str, Any] = json.loads(member.read())
    except (OSError, tarfile.TarError, KeyError, ValueError) as e:
        raise BackupError(f"{archive}: not a dpgcn backup ({e})") from e
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{archive}: backup format {manifest.get('format')!r}, not {FORMAT}")
    return manifest


def unpack(archive: Path, into: Path) -> dict[str, Any]:
    """Extract an archive and check every member against the manifest's checksums."""
    manifest = read_manifest(archive)
    expected: dict[str, str] = manifest["sha256"]
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(into, filter="data")
    except (OSError, tarfile.TarError) as e:
        raise BackupError(f"{archive}: cannot be extracted ({e})") from e
    for name, digest in expected.items():
        path = into / name
        if not path.is_file():
            raise BackupError(f"{archive}: member {name} is missing")
        if _sha256(path) != digest:
            raise BackupError(f"{archive}: member {name} does not match its checksum")
    return manifest


def restore_backup(settings: Settings, archive: Path) -> Restored:
    """Replace Neo4j's database and Redis' data with an archive's, then replay the erasure and
    revocation logs. Both servers are stopped and started again."""
    _require_managed(settings)
    database = settings.neo4j.database
    spec = services.neo4j_spec(settings)
    with tempfile.TemporaryDirectory(dir=settings.home, prefix=".restore-") as tmp:
        work = Path(tmp)
        manifest = unpack(archive, work)
        dumped = manifest["neo4j"]["database"]
        dump = work / "neo4j" / f"{dumped}.dump"
        if dumped != database or not dump.is_file():
            raise BackupError(f"{archive}: holds database {dumped!r}, not {database!r}")
        before = _last_committed(settings)
        services.stop_service(settings, "neo4j")
        try:
            _run_admin(
                spec,
                "database",
                "load",
                database,
                f"--from-path={work / 'neo4j'}",
                "--overwrite-destination=true",
            )
        finally:
            services.start_service(settings, "neo4j")
        _restore_redis(settings, work / REDIS_MEMBER, manifest["redis"])
    _advance_past(settings, before)
    replay = replay_logs(settings)
    _mark_restored(settings)
    logger.info("restored %s: %s", archive, replay)
    return Restored(manifest, replay)


def _restore_redis(settings: Settings, rdb: Path, info: dict[str, Any]) -> None:
    """With Redis stopped, make the snapshot both ``dump.rdb`` and the base of a new
    append-only file (an AOF, when present, wins over the RDB at start-up)."""
    home = settings.redis_home
    services.stop_service(settings, "redis")
    try:
        shutil.copy2(rdb, home / "dump.rdb")
        aof_dir = home / str(info.get("appenddirname") or "appendonlydir")
        aof_name = str(info.get("appendfilename") or "appendonly.aof")
        if aof_dir.exists():
            shutil.rmtree(aof_dir)
        aof_dir.mkdir()
        base = f"{aof_name}.1.base.rdb"
        shutil.copy2(rdb, aof_dir / base)
        (aof_dir / f"{aof_name}.manifest").write_text(f"file {base} seq 1 type b\n")
    finally:
        services.start_service(settings, "redis")


def _salted(records: list[dict[str, Any]]) -> dict[str, set[str]]:
    by_salt: dict[str, set[str]] = {}
    for record in records:
        salt, digest = record.get("salt"), record.get("id_hash")
        if isinstance(salt, str) and isinstance(digest, str):
            by_salt.setdefault(salt, set()).add(digest)
    return by_salt


def replay_logs(settings: Settings) -> Replay:
    """Erase again every user in the erasure log and revoke again every key in the revocation
    log (idempotent: what is already erased or revoked stays so)."""
    from graphstore import apikeys, users

    statelog.set_directory(settings.home)
    conn = services.neo4j_connection(settings)
    logged = statelog.read(statelog.ERASURES)
    erasures = _salted(logged)
    newest = next(
        (str(r["salt"]) for r in reversed(logged) if isinstance(r.get("salt"), str)), None
    )
    revocations = [str(r["key_id"]) for r in statelog.read(statelog.REVOCATIONS) if "key_id" in r]
    erased = tombstones = revoked = skipped = 0
    salt: str | None = None
    hashes: set[str] = set()
    try:
        with connect(conn.uri, conn.user, conn.password) as driver:
            salt = _graph_salt(driver, conn.database, newest)
            for other in set(erasures) - {salt}:
                skipped += 1
                logger.warning(
                    "%d erasure log entries use a salt the restored graph does not hold "
                    "(the graph was emptied since); their users cannot be matched",
                    len(erasures[other]),
                )
            hashes = erasures.get(salt or "", set())
            if hashes and salt is not None:
                rows = execute(driver, "users/list_user_ids", database=conn.database, read=True)
                for row in rows:
                    user_id = str(row["id"])
                    if users.id_hash(user_id, salt) in hashes:
                        users.delete_user(driver, user_id, conn.database, log=False)
                        erased += 1
                made = execute(
                    driver,
                    "users/merge_tombstones",
                    {"hashes": sorted(hashes), "now": time.time()},
                    database=conn.database,
                )
                tombstones = int(made[0]["tombstones"]) if made else 0
            for key_id in dict.fromkeys(revocations):
                if apikeys.revoke_key(driver, key_id, conn.database, log=False):
                    revoked += 1
    except GraphStoreError as e:
        raise BackupError(f"replaying the erasure/revocation logs failed: {e}") from e
    scrubbed = _scrub_stream(settings, salt, hashes) if salt is not None and hashes else 0
    return Replay(erased, tombstones, revoked, skipped, scrubbed)


def _scrub_stream(settings: Settings, salt: str, hashes: set[str], chunk: int = 1000) -> int:
    """Delete the restored feedback stream's entries of erased users (their ids hashed with
    the salt are in the log), as the erasure did before the backup was restored."""
    from graphstore.users import id_hash

    client = _redis_client(settings)
    deleted, start = 0, "-"
    try:
        while True:
            entries = client.xrange(FEEDBACK_STREAM, min=start, max="+", count=chunk)
            erased = [
                eid
                for eid, fields in entries
                if (user := fields.get(b"user_id")) is not None
                and id_hash(user.decode("utf-8", "replace"), salt) in hashes
            ]
            if erased:
                deleted += int(client.xdel(FEEDBACK_STREAM, *erased))
            if len(entries) < chunk:
                return deleted
            start = "(" + entries[-1][0].decode()
    finally:
        client.close()


def _last_committed(settings: Settings) -> int | None:
    """The database's last committed transaction id, read from the bookmark a bookmark-free
    read returns (None when it cannot be read or decoded; the advance is then skipped)."""
    conn = services.neo4j_connection(settings)
    try:
        with (
            connect(conn.uri, conn.user, conn.password) as driver,
            driver.session(database=conn.database) as session,
        ):
            session.execute_read(lambda tx: list(tx.run(queries.load("admin/get_store_id"))))
            values = list(session.last_bookmarks().raw_values)
    except Exception as e:  # a restore goes on without the advance (logged)
        logger.warning("last committed transaction unknown (%s)", type(e).__name__)
        return None
    ids = [tx for tx in map(bookmark_tx, values) if tx is not None]
    return max(ids) if ids else None


def bookmark_tx(value: str) -> int | None:
    """The transaction id in a Neo4j 5 bookmark (``FB:`` + base64 of a PackStream list: the
    database's UUID as 16 bytes, the transaction id as an integer); None for another format."""
    if not value.startswith("FB:"):
        return None
    try:
        raw = base64.urlsafe_b64decode(value[3:] + "=" * (-len(value[3:]) % 4))
    except ValueError:
        return None
    if len(raw) < 20 or raw[0] != 0x91 or raw[1] != 0xCC or raw[2] != 16:
        return None
    marker, rest = raw[19], raw[20:]
    if marker < 0x80:
        return marker
    sizes = {0xC8: 1, 0xC9: 2, 0xCA: 4, 0xCB: 8}
    size = sizes.get(marker)
    if size is None or len(rest) < size:
        return None
    return int.from_bytes(rest[:size], "big", signed=True)


def _advance_past(settings: Settings, before: int | None) -> int:
    """Commit empty-ish transactions until the restored store's transaction ids pass
    ``before`` (the replaced store's last one): bookmarks held by running clients (the API,
    the workers) then never wait for a transaction the restored store lacks. Returns how many
    were committed."""
    now = _last_committed(settings)
    if before is None or now is None or now >= before + ADVANCE_MARGIN:
        return 0
    count = before + ADVANCE_MARGIN - now
    conn = services.neo4j_connection(settings)
    with connect(conn.uri, conn.user, conn.password) as driver:
        run_autocommit(
            driver, "admin/advance_transactions", {"count": count}, database=conn.database
        )
    logger.info("advanced the restored store by %d transactions (past %d)", count, before)
    return count


def _mark_restored(settings: Settings) -> None:
    """A new restore epoch: running API processes drop what they read before the replay."""
    conn = services.neo4j_connection(settings)
    with connect(conn.uri, conn.user, conn.password) as driver:
        execute(
            driver,
            "admin/set_restore_epoch",
            {"epoch": secrets.token_hex(8), "now": time.time()},
            database=conn.database,
        )


def _graph_salt(driver: Any, database: str, logged: str | None) -> str | None:
    """The restored graph's erasure salt; when it has none (the backup predates the first
    erasure), the salt of the log's entries is put back so their hashes match again."""
    from graphstore import users

    def work(tx: Any) -> str | None:
        salt = users.read_salt(tx)
        if salt is None and logged is not None:
            rows = users.run_named(
                tx, "users/merge_erasure_salt", {"candidate": logged, "now": time.time()}
            )
            salt = str(rows[0]["salt"])
        return salt

    return users.run_in_transaction(driver, work, database)
