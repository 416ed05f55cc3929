"""Scale run (slow; not part of the tests): load a ``synthetic_scale.generate_scale`` shop of
``--scale`` × (1M users / 200k items) with ~``--rels-per-user`` interactions each into an
empty managed Neo4j, optionally export it, and report wall time, rate, the loader process's
peak RSS, Neo4j's peak RSS and the store size on disk.

Two loaders (``--path``):

* ``online``: ``graphstore.ingest.load_source`` into the running server (CREATE fast path);
* ``bulk``: ``dpgcn.bulk_import.bulk_load`` — CSV files from the same rows, the server stopped,
  ``neo4j-admin database import``, the server started again, the schema created after.

Full scale (1M users / 200k items / ~20M relationships)::

    .venv/bin/python bench/scale_run.py --scale 1 --path bulk

Dry run at 1/20 scale (50k users / 10k items / ~1M relationships)::

    .venv/bin/python bench/scale_run.py --scale 0.05 --path online

Uses the benchmarks' state home and ports unless the environment names others, and wipes
that graph.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import benchenv  # noqa: F401  (sets the benchmarks' own state home and ports)


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().strip()


class RssWatch:
    """Samples a process's resident memory (VmRSS) every ``every`` seconds; the pid is read
    from a pid file each time (the server may be restarted under it)."""

    def __init__(self, pid_file: Path, every: float = 1.0) -> None:
        self.pid_file = pid_file
        self.every = every
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                pid = int(self.pid_file.read_text().strip())
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        self.peak_kib = max(self.peak_kib, int(line.split()[1]))
            except (OSError, ValueError):
                pass
            self._stop.wait(self.every)

    def __enter__(self) -> RssWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=0.05)
    parser.add_argument("--rels-per-user", type=float, default=20.0)
    parser.add_argument("--batch-size", type=int, default=10000)
    parser.add_argument("--path", choices=("online", "bulk"), default="online")
    parser.add_argument("--no-export", action="store_true")
    args = parser.parse_args()

    from dpgcn import bulk_import, services
    from dpgcn.settings import get_settings
    from graphstore import ingest
    from graphstore.driver import connect, delete_all, execute
    from graphstore.export import export_subgraph
    from graphstore.sources import synthetic_scale

    print(f"load average at start: {loadavg()}", flush=True)
    subprocess.run([sys.executable, "-m", "dpgcn.cli", "services", "up"], check=True)
    settings = get_settings()
    conn = services.neo4j_connection(settings)
    spec = synthetic_scale.ScaleSpec(
        users=round(1_000_000 * args.scale),
        items=round(200_000 * args.scale),
        rels_per_user=args.rels_per_user,
        seed=7,
    )
    print(f"scale {args.scale}: {spec.users:,} users, {spec.items:,} items", flush=True)
    if args.path == "online":  # the bulk import replaces the store anyway
        driver = connect(conn.uri, conn.user, conn.password)
        delete_all(driver)
        driver.close()
    server = services.neo4j_spec(settings)
    store = Path(os.environ["DPGCN_HOME"]) / "neo4j" / "data"
    started = time.perf_counter()
    with RssWatch(server.pid_file) as neo4j_rss:
        if args.path == "online":
            driver = connect(conn.uri, conn.user, conn.password)
            summary = ingest.load_source(
                driver, synthetic_scale.generate_scale(spec), batch_size=args.batch_size
            )
            detail = "online loader, CREATE fast path"
        else:
            done = bulk_import.bulk_load(
                settings, synthetic_scale.generate_scale(spec), replace=True
            )
            summary = done.summary
            driver = connect(conn.uri, conn.user, conn.password)
            detail = (
                f"bulk: files {done.files_s:.0f} s, stop {done.stop_s:.0f} s, neo4j-admin import "
                f"{done.import_s:.0f} s (importer peak RSS {done.import_peak_rss_mib:,.0f} MiB), "
                f"start {done.start_s:.0f} s, schema {done.schema_s:.0f} s"
            )
        seconds = time.perf_counter() - started
    rels = summary.relationships
    in_graph = int(execute(driver, "export/count_relationships", read=True)[0]["n"])
    print(
        f"load ({detail}): {summary.nodes:,} nodes + {rels:,} relationships in {seconds:.0f} s "
        f"-> {rels / seconds:,.0f} rel/s; in graph: {in_graph:,}; loader peak RSS "
        f"{peak_rss_mib():,.0f} MiB; Neo4j server peak RSS (sampled each second) "
        f"{neo4j_rss.peak_kib / 1024:,.0f} MiB; load average {loadavg()}",
        flush=True,
    )
    print(
        f"Neo4j store: databases/neo4j {dir_size(store / 'databases' / 'neo4j') / 2**30:.2f} "
        f"GiB, transactions/neo4j {dir_size(store / 'transactions' / 'neo4j') / 2**30:.2f} GiB",
        flush=True,
    )
    if not args.no_export:
        out = Path(tempfile.mkdtemp(prefix="scale-export-")) / "graph"
        result = export_subgraph(driver, out)
        print(
            f"export: {result['edges']:,} edges in {result['seconds']:.0f} s -> "
            f"{result['edges'] / result['seconds']:,.0f} edges/s; files "
            f"{dir_size(out) / 2**20:,.0f} MiB; peak RSS now {peak_rss_mib():,.0f} MiB"
        )
    print(f"load average at end: {loadavg()}")
    driver.close()


if __name__ == "__main__":
    main()
