"""The offline bulk path for an initial load: a :class:`GraphSource` written as CSV files and
imported with Neo4j's own ``neo4j-admin database import full`` while the managed server is
stopped. Neo4j recommends this route for initial loads: the importer builds the store files
directly (no transactions, no per-row index seeks), on all cores.

It reads the same rows as the online loader (:func:`graphstore.ingest.load_source`) — the
loaders' file:line validation and text pipeline are unchanged — and writes the same graph:

* node parts: one row per id (the first occurrence, as the online CREATE path keeps), the
  same properties (``consent`` defaults to true, null properties are left out, an empty
  string stays an empty string);
* categories: parents that have no row of their own become nodes with only an id, as the
  online ``MERGE`` makes them; ``SUBCATEGORY_OF`` from each row's parent;
* relationship parts: link rows deduplicated per pair, interactions as aggregated by the
  loaders; a row whose endpoint has no node is left out and counted (``unmatched``), as
  online.

The import replaces the whole database (``--overwrite-destination``), so :func:`bulk_load`
refuses it unless the database is empty and the server is the locally managed one, stops the
server (and the ``services up --app`` processes), imports, starts it again and then creates the
schema (constraints and indexes from ``cypher/schema``).
"""

from __future__ import annotations

import csv
import logging
import os
import resource
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dpgcn import neo4j_server
from dpgcn.apps import APP_PROCESSES, app_pid_file, start_app, stop_app
from dpgcn.neo4j_install import ADMIN_TOOL, Neo4jServerSpec, find_java, server_env
from dpgcn.processes import ServiceError, read_pid
from dpgcn.services import neo4j_connection, neo4j_managed, neo4j_spec
from dpgcn.settings import Settings
from graphstore import model
from graphstore.driver import connect, execute
from graphstore.errors import GraphStoreError
from graphstore.ingest import LoadSummary
from graphstore.ingest_parts import LinkPart, interaction_part, link_parts
from graphstore.records import GraphSource, Row
from graphstore.schema import apply_schema

logger = logging.getLogger(__name__)

Progress = Callable[[str, int], None]


class BulkImportError(ServiceError):
    """neo4j-admin could not import the files (see its report and log)."""


#: (source attribute, label, [(row key, CSV header)]) of the node files; the first column
#: is the id (``id:ID(<label>)``: stored as the ``id`` property, one id space per label).
_NODE_FILES: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    (
        "users",
        model.USER,
        (
            ("age", "age:long"),
            ("gender", "gender"),
            ("occupation", "occupation"),
            ("consent", "consent:boolean"),
        ),
    ),
    ("items", model.ITEM, (("title", "title"), ("price", "price:double"))),
    ("queries", model.QUERY, (("text", "text"),)),
    ("terms", model.TERM, ()),
    ("categories", model.CATEGORY, (("name", "name"),)),
)
#: CSV header of a relationship part's properties, by row key.
_REL_HEADERS = {"count": "count:long", "ts": "ts:double", "weight": "weight:double"}


@dataclass
class ImportFiles:
    """The CSV files of one import and what they hold."""

    directory: Path
    #: (label, file) and (type, file) arguments of ``--nodes`` / ``--relationships``.
    nodes: list[tuple[str, Path]] = field(default_factory=list)
    relationships: list[tuple[str, Path]] = field(default_factory=list)
    summary: LoadSummary = field(default_factory=lambda: LoadSummary(source=""))
    #: Some string value holds a line break (the importer then needs --multiline-fields).
    multiline: bool = False
    seconds: float = 0.0


def _cell(value: Any) -> str:
    """One node CSV field: null → empty and unquoted (the importer leaves the property
    out), a string → always quoted (so ``""`` stays an empty string), booleans in lower
    case, numbers as Python prints them (floats round-trip)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace('"', '""') + '"'
    return repr(value) if isinstance(value, float) else str(value)


def _has_break(value: Any) -> bool:
    return isinstance(value, str) and ("\n" in value or "\r" in value)


def write_import_files(
    source: GraphSource, directory: Path, *, progress: Progress | None = None
) -> ImportFiles:
    """Write ``source`` as importer CSV files under ``directory`` (created; files replaced)."""
    started = time.perf_counter()
    directory.mkdir(parents=True, exist_ok=True)
    files = ImportFiles(directory=directory)
    summary = LoadSummary(source=source.name, rejected=list(source.rejected))
    files.summary = summary
    keys: dict[str, set[Any]] = {}

    for part, label, columns in _NODE_FILES:
        rows: Iterable[Row] = getattr(source, part)
        path = directory / f"nodes-{label}.csv"
        seen = keys.setdefault(label, set())
        count = written = 0
        parents: dict[Any, None] = {}
        with path.open("w", encoding="utf-8", newline="") as out:
            out.write(",".join([f"id:ID({label})", *(h for _, h in columns)]) + "\n")
            for row in rows:
                key = row["id"]
                if key in seen or key is None:
                    continue  # one node per id, as the online CREATE path
                seen.add(key)
                count += 1
                values = [row.get(k) for k, _ in columns]
                if part == "users" and values[3] is None:
                    values[3] = True  # coalesce(row.consent, true), as online
                if part == "categories" and row.get("parent") is not None:
                    parents[row["parent"]] = None
                if not files.multiline and any(_has_break(v) for v in (key, *values)):
                    files.multiline = True
                out.write(",".join([_cell(key), *map(_cell, values)]) + "\n")
                written += 1
                if progress and written % 10000 == 0:
                    progress(part, 10000)
            for parent in parents:  # a parent without a row of its own: a node with its id
                if parent not in seen:
                    seen.add(parent)
                    out.write(_cell(parent) + "," * len(columns) + "\n")
        summary.rows[part] = count
        summary.written[part] = written
        summary.created.append(part)
        files.nodes.append((label, path))
        if part == "categories":
            _write_subcategories(source, directory, seen, files)

    def write_links(spec: LinkPart, rows: Iterable[Row]) -> None:
        path = directory / f"rels-{spec.part}.csv"
        k0, k1 = spec.keys
        src, dst = keys[spec.src], keys[spec.dst]
        unique = spec.props != ("count", "ts", "weight")  # interactions are aggregated
        pairs: set[tuple[Any, Any]] = set()
        count = written = 0
        with path.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(
                [f":START_ID({spec.src})", f":END_ID({spec.dst})"]
                + [_REL_HEADERS[p] for p in spec.props]
            )
            batch: list[list[Any]] = []
            for row in rows:
                a, b = row[k0], row[k1]
                if unique:
                    if (a, b) in pairs:
                        continue  # one link per pair, as the online CREATE path
                    pairs.add((a, b))
                count += 1
                if a not in src or b not in dst:
                    continue  # unmatched, as online
                batch.append([a, b, *(row[p] for p in spec.props)])
                if len(batch) >= 10000:
                    writer.writerows(batch)
                    written += len(batch)
                    if progress:
                        progress(spec.part, len(batch))
                    batch.clear()
            writer.writerows(batch)
            written += len(batch)
        summary.rows[spec.part] = count
        summary.written[spec.part] = written
        summary.created.append(spec.part)
        files.relationships.append((spec.type, path))

    for rel_type, rows in source.interactions.items():
        write_links(interaction_part(rel_type), rows)
    for spec in link_parts():
        write_links(spec, getattr(source, spec.part))
    files.seconds = time.perf_counter() - started
    logger.info("import files for %s written to %s in %.1fs", source.name, directory, files.seconds)
    return files


def _write_subcategories(
    source: GraphSource, directory: Path, categories: set[Any], files: ImportFiles
) -> None:
    path = directory / "rels-SUBCATEGORY_OF.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([f":START_ID({model.CATEGORY})", f":END_ID({model.CATEGORY})"])
        done: set[tuple[Any, Any]] = set()
        for row in source.categories:
            pair = (row["id"], row.get("parent"))
            if pair[1] is not None and pair not in done and pair[0] in categories:
                done.add(pair)
                writer.writerow(pair)
    files.relationships.append((model.SUBCATEGORY_OF, path))


@dataclass(frozen=True)
class ImportResult:
    seconds: float
    #: Peak resident memory of the importer process (its JVM), MiB.
    peak_rss_mib: float
    log: Path


def import_command(
    spec: Neo4jServerSpec,
    java: str,
    files: ImportFiles,
    *,
    database: str = "neo4j",
    threads: int | None = None,
    heap: str = "1g",
    off_heap: str | None = None,
) -> list[str]:
    """The ``neo4j-admin database import full`` command line for ``files``."""
    argv = [
        java,
        f"-Xmx{heap}",
        "-cp",
        f"{spec.lib}/*",
        ADMIN_TOOL,
        "database",
        "import",
        "full",
        database,  # first: --nodes/--relationships take several files each
        "--overwrite-destination=true",
        f"--report-file={files.directory / 'import.report'}",
    ]
    if threads:
        argv.append(f"--threads={threads}")
    if off_heap:
        argv.append(f"--max-off-heap-memory={off_heap}")
    if files.multiline:
        argv.append("--multiline-fields=true")
    argv += [f"--nodes={label}={path}" for label, path in files.nodes]
    argv += [f"--relationships={rel}={path}" for rel, path in files.relationships]
    return argv


def run_import(
    spec: Neo4jServerSpec,
    java: str,
    files: ImportFiles,
    *,
    database: str = "neo4j",
    threads: int | None = None,
    timeout: float = 6 * 3600,
) -> ImportResult:
    """Run the importer on ``files`` into ``database`` (the server must be stopped)."""
    argv = import_command(spec, java, files, database=database, threads=threads)
    log = spec.logs / "import.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    logger.info("importing %s into %s (log: %s)", files.directory, database, log)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    with log.open("w") as out:
        try:
            result = subprocess.run(
                argv,
                env=server_env(spec),
                cwd=files.directory,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise BulkImportError(f"neo4j-admin import ran past {timeout:.0f}s; see {log}") from e
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if result.returncode != 0:
        tail = _tail(log)
        raise BulkImportError(
            f"neo4j-admin database import failed (exit {result.returncode}); see {log} and "
            f"{files.directory / 'import.report'}: {tail}"
        )
    # ru_maxrss of children is the largest child so far: only meaningful when it grew.
    return ImportResult(seconds, max(peak, before) / 1024, log)


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


@dataclass(frozen=True)
class BulkLoad:
    """What ``bulk_load`` did and how long each step took (seconds)."""

    summary: LoadSummary
    files_s: float
    stop_s: float
    import_s: float
    start_s: float
    schema_s: float
    #: Peak resident memory of the neo4j-admin import process, MiB.
    import_peak_rss_mib: float
    directory: Path

    @property
    def seconds(self) -> float:
        return self.files_s + self.stop_s + self.import_s + self.start_s + self.schema_s


def bulk_load(
    settings: Settings,
    source: GraphSource,
    *,
    replace: bool = False,
    workdir: Path | None = None,
    threads: int | None = None,
    keep_files: bool = False,
    progress: Callable[[str, int], None] | None = None,
) -> BulkLoad:
    """Load ``source`` with ``neo4j-admin database import`` (the files and the importer above).

    Only for the locally managed server, and only into an empty database (``replace=True``:
    whatever it holds is replaced). The server is stopped for the import and started again;
    the schema is created afterwards. Refused with :class:`ServiceError` otherwise.

    The new store's transaction ids start afresh: a client that used the database before
    (a driver holding bookmarks) has to reconnect. ``services up --app`` processes are
    stopped before the import and started again after it."""
    if not neo4j_managed(settings):
        raise ServiceError(
            "--bulk imports offline into the locally managed Neo4j only; NEO4J_URI points at "
            "an external server: load it without --bulk (the online loader)."
        )
    spec = neo4j_spec(settings)
    if read_pid(spec.pid_file) is None:
        raise ServiceError("the managed Neo4j is not running: run `dpgcn services up` first.")
    conn = neo4j_connection(settings)
    with connect(conn.uri, conn.user, conn.password) as driver:
        records = execute(driver, "ingest/count_all_nodes", database=conn.database, read=True)
    nodes = int(records[0]["n"])
    if nodes and not replace:
        raise ServiceError(
            f"--bulk replaces the whole database and is only for an empty one; "
            f"{conn.database!r} holds {nodes:,} nodes. Load without --bulk (the online "
            "loader merges into what is there), or add --replace to delete everything first."
        )
    directory = workdir or settings.home / "import" / f"bulk-{os.getpid()}"
    # The worker and the API lose the server for the import, and their drivers' bookmarks
    # name transactions of the replaced store: they are stopped and started again.
    apps = [name for name in APP_PROCESSES if read_pid(app_pid_file(settings, name))]
    try:
        files = write_import_files(source, directory, progress=progress)
        java = find_java()
        started = time.perf_counter()
        for name in apps:
            stop_app(settings, name)
        neo4j_server.stop(spec)
        stop_s = time.perf_counter() - started
        try:
            result = run_import(spec, java, files, database=conn.database, threads=threads)
        finally:
            started = time.perf_counter()
            neo4j_server.start(spec)
            start_s = time.perf_counter() - started
    except GraphStoreError as e:
        raise ServiceError(str(e)) from e
    finally:
        if not keep_files:
            shutil.rmtree(directory, ignore_errors=True)
    for name in apps:
        start_app(settings, name)
    started = time.perf_counter()
    with connect(conn.uri, conn.user, conn.password) as driver:
        apply_schema(driver, conn.database)
    schema_s = time.perf_counter() - started
    logger.info("bulk-loaded %s: %s", source.name, files.summary.written)
    return BulkLoad(
        summary=files.summary,
        files_s=files.seconds,
        stop_s=stop_s,
        import_s=result.seconds,
        start_s=start_s,
        schema_s=schema_s,
        import_peak_rss_mib=result.peak_rss_mib,
        directory=directory,
    )
