"""Ingestion throughput at ~1M relationships, every row measured in this run against the same
managed Neo4j:

* the online loader (``graphstore.ingest.load_source``) into an empty graph: batched
  ``UNWIND`` of list rows, endpoints by internal node id, CREATE fast path, batches built by
  a producer thread while the previous one is written, relationship batches written by
  ``--writers`` transactions at once (the loader's default, 2), all through the Cypher
  statements of ``cypher/ingest``;
* ``--serial``: the same with one writer (one transaction at a time);
* ``--merge``: the same loader forced onto its MERGE path (what it does when a section of
  the graph already has relationships);
* ``--bulk``: the offline bulk path (``dpgcn.bulk_import.bulk_load``: CSV files +
  ``neo4j-admin database import``, server stopped and restarted, schema created after) —
  Neo4j's route for initial loads into an empty database, reported as its own row;
* the naive baseline: one ``MERGE`` per transaction, index seeks per endpoint, on a sample of
  ``CLICKED`` rows.

The graph is ``synthetic_scale.generate_scale`` (about 1M relationships at the defaults). It
uses the benchmarks' state home and ports unless the environment names others, and wipes that
graph::

    .venv/bin/python bench/bench_ingest.py [--users 50000] [--items 10000] [--merge] [--serial]
        [--no-pipeline] [--bulk] [--writers 2] [--runs 5]

Prints relationships/s of each (with ``--runs N``: each variant loaded N times, interleaved,
and the medians) and their ratios to the naive loader, and checks that every path leaves the
same relationship count. Targets and measured figures: docs/benchmarks-ingest.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from itertools import product
from pathlib import Path

import benchenv  # noqa: F401  (sets the benchmarks' own state home and ports)


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().strip()


def neo4j_cpu() -> float:
    """CPU seconds used so far by the managed Neo4j server (0 when it is not local)."""
    from dpgcn import services
    from dpgcn.processes import read_pid
    from dpgcn.settings import get_settings

    pid = read_pid(services.neo4j_spec(get_settings()).pid_file)
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=50000)
    parser.add_argument("--items", type=int, default=10000)
    parser.add_argument("--rels-per-user", type=float, default=20.0)
    parser.add_argument("--naive-rows", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=10000)
    parser.add_argument("--merge", action="store_true", help="also time the MERGE path")
    parser.add_argument("--no-pipeline", action="store_true", help="also time without prefetch")
    parser.add_argument("--serial", action="store_true", help="also time with one writer")
    parser.add_argument("--writers", type=int, default=2, help="concurrent CREATE writers")
    parser.add_argument("--bulk", action="store_true", help="also time the bulk import path")
    parser.add_argument("--reload", action="store_true", help="load again, compare counts")
    parser.add_argument(
        "--runs", type=int, default=1, help="loads per variant (interleaved); medians reported"
    )
    args = parser.parse_args()

    from dpgcn import bulk_import, services
    from dpgcn.settings import get_settings
    from graphstore import ingest, model
    from graphstore.driver import connect, delete_all, execute
    from graphstore.sources import synthetic_scale

    print(f"load average at start: {loadavg()}", flush=True)
    subprocess.run([sys.executable, "-m", "dpgcn.cli", "services", "up"], check=True)
    settings = get_settings()
    conn = services.neo4j_connection(settings)
    driver = connect(conn.uri, conn.user, conn.password)
    spec = synthetic_scale.ScaleSpec(
        users=args.users, items=args.items, rels_per_user=args.rels_per_user, seed=1
    )

    def count() -> int:
        return int(execute(driver, "export/count_relationships", read=True)[0]["n"])

    def load(fast: bool, pipeline: bool, writers: int) -> tuple[float, float, ingest.LoadSummary]:
        """(seconds, Neo4j CPU seconds, summary) of one load into an emptied graph."""
        delete_all(driver)
        cpu = neo4j_cpu()
        started = time.perf_counter()
        summary = ingest.load_source(
            driver,
            synthetic_scale.generate_scale(spec),
            batch_size=args.batch_size,
            fast_create=fast,
            pipeline=pipeline,
            writers=writers,
        )
        return time.perf_counter() - started, neo4j_cpu() - cpu, summary

    rates: dict[str, float] = {}
    series: dict[str, list[float]] = {}
    counts: dict[str, int] = {}
    w = args.writers
    variants: list[tuple[str, bool, bool, int]] = []
    if args.merge:
        variants.append(("online, MERGE path", False, True, 1))
    if args.no_pipeline:
        variants.append(("online, CREATE fast path, no prefetch thread, 1 writer", True, False, 1))
    if args.serial:
        variants.append(("online, CREATE fast path, 1 writer", True, True, 1))
    variants.append((f"online, CREATE fast path, {w} writers", True, True, w))
    for _, (label, fast, pipeline, writers) in product(range(args.runs), variants):
        seconds, server_cpu, summary = load(fast, pipeline, writers)
        rels = summary.relationships
        series.setdefault(label, []).append(rels / seconds)
        rates[label] = statistics.median(series[label])
        counts[label] = count()
        print(
            f"{label} (batch {args.batch_size}): {summary.nodes:,} nodes + {rels:,} "
            f"relationships in {seconds:.1f} s -> {rels / seconds:,.0f} rel/s "
            f"(created: {len(summary.created)} parts; Neo4j CPU {server_cpu:.1f} s; "
            f"load average {loadavg()})",
            flush=True,
        )

    before = count()
    if args.reload:
        started = time.perf_counter()
        ingest.load_source(driver, synthetic_scale.generate_scale(spec), batch_size=args.batch_size)
        print(
            f"second load of the same source (MERGE): {time.perf_counter() - started:.1f} s; "
            f"relationships {before:,} -> {count():,}",
            flush=True,
        )

    # naive: CLICKED rows again, one MERGE per transaction, on a sample
    rows = []
    for row in synthetic_scale.generate_scale(spec).interactions[model.CLICKED]:
        rows.append(row)
        if len(rows) >= args.naive_rows:
            break
    started = time.perf_counter()
    ingest.write_naive(driver, model.CLICKED, rows)
    naive_s = time.perf_counter() - started
    naive_rate = len(rows) / naive_s
    print(
        f"naive one-row-per-transaction MERGE: {len(rows)} rows in {naive_s:.1f} s -> "
        f"{naive_rate:,.0f} rel/s; relationships after: {count():,} (was {before:,})",
        flush=True,
    )

    if args.bulk:
        driver.close()
        done = bulk_import.bulk_load(settings, synthetic_scale.generate_scale(spec), replace=True)
        driver = connect(conn.uri, conn.user, conn.password)
        rels = done.summary.relationships
        label = "offline bulk import (files + import + restart + schema)"
        rates[label] = rels / done.seconds
        counts[label] = count()
        print(
            f"{label}: {done.summary.nodes:,} nodes + {rels:,} relationships in "
            f"{done.seconds:.1f} s -> {rels / done.seconds:,.0f} rel/s "
            f"[files {done.files_s:.1f} s, "
            f"stop {done.stop_s:.1f} s, neo4j-admin import {done.import_s:.1f} s "
            f"({rels / done.import_s:,.0f} rel/s, peak RSS {done.import_peak_rss_mib:,.0f} MiB), "
            f"start {done.start_s:.1f} s, schema {done.schema_s:.1f} s] "
            f"(load average {loadavg()})",
            flush=True,
        )

    for label, runs in series.items():
        if len(runs) > 1:
            print(
                f"{label}: median of {len(runs)} runs {statistics.median(runs):,.0f} rel/s "
                f"(min {min(runs):,.0f}, max {max(runs):,.0f})"
            )
    for label, rate in rates.items():
        print(f"ratio {label} / naive: {rate / naive_rate:.1f}x")
    print(f"relationships in the graph after each path: {counts}")
    if len(set(counts.values())) > 1:
        print("MISMATCH: the paths left different relationship counts")
    print(f"load average at end: {loadavg()}")
    driver.close()


if __name__ == "__main__":
    main()
