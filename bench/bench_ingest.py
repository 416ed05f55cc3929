"""Ingestion throughput: the batched UNWIND loader (``graphstore.ingest.load_source``) into an
empty graph — its CREATE fast path, and (``--merge``) the MERGE path it uses when a section
already has relationships — against a naive one-row-per-transaction MERGE loader on a sample,
all measured in this run against the same managed Neo4j.

The graph is ``synthetic.generate_scale`` (about 1M relationships at the defaults). Uses its
own state home and ports (.state/bench, 47687/47474/46379) and wipes that graph::

    .venv/bin/python bench/bench_ingest.py [--users 50000] [--items 10000] [--merge]

Prints relationships/s of each, their ratio, and checks that loading the same source again
leaves identical counts (issue targets: >= 50k rel/s, >= 30x naive).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import benchenv  # noqa: F401  (sets the benchmarks' own state home and ports)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=50000)
    parser.add_argument("--items", type=int, default=10000)
    parser.add_argument("--rels-per-user", type=float, default=20.0)
    parser.add_argument("--naive-rows", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=10000)
    parser.add_argument("--merge", action="store_true", help="also time the MERGE path")
    parser.add_argument("--reload", action="store_true", help="load again, compare counts")
    args = parser.parse_args()

    from dpgcn import services
    from dpgcn.settings import get_settings
    from graphstore import ingest, model, synthetic
    from graphstore.driver import connect, delete_all, execute

    subprocess.run([sys.executable, "-m", "dpgcn.cli", "services", "up"], check=True)
    conn = services.neo4j_connection(get_settings())
    driver = connect(conn.uri, conn.user, conn.password)
    spec = synthetic.ScaleSpec(
        users=args.users, items=args.items, rels_per_user=args.rels_per_user, seed=1
    )
    rel_parts = [model.SEARCHED, *model.INTERACTIONS, "led_to", "query_terms", "item_terms"]
    rel_parts.append("item_categories")

    def load(fast: bool) -> tuple[float, int, ingest.LoadSummary]:
        delete_all(driver)
        started = time.perf_counter()
        summary = ingest.load_source(
            driver, synthetic.generate_scale(spec), batch_size=args.batch_size, fast_create=fast
        )
        seconds = time.perf_counter() - started
        return seconds, sum(summary.written.get(p, 0) for p in rel_parts), summary

    results = {}
    for label, fast in (("MERGE", False), ("CREATE fast path", True)):
        if label == "MERGE" and not args.merge:
            continue
        seconds, rels, summary = load(fast)
        results[label] = rels / seconds
        nodes = sum(summary.written.get(p, 0) for p in ("users", "items", "queries", "terms"))
        print(
            f"batched UNWIND loader, {label} (batch {args.batch_size}): {nodes:,} nodes + "
            f"{rels:,} relationships in {seconds:.1f} s -> {rels / seconds:,.0f} rel/s "
            f"(created: {summary.created})"
        )

    def count() -> int:
        return int(execute(driver, "export/count_relationships", read=True)[0]["n"])

    before = count()
    if args.reload:
        started = time.perf_counter()
        ingest.load_source(driver, synthetic.generate_scale(spec), batch_size=args.batch_size)
        print(
            f"second load of the same source (MERGE): {time.perf_counter() - started:.1f} s; "
            f"relationships {before:,} -> {count():,}"
        )

    # naive: CLICKED rows again, one MERGE per transaction, on a sample
    source = synthetic.generate_scale(spec)
    rows = []
    for row in source.interactions[model.CLICKED]:
        rows.append(row)
        if len(rows) >= args.naive_rows:
            break
    started = time.perf_counter()
    for row in rows:
        execute(driver, "ingest/merge_interactions", {"rows": [row]}, type=model.CLICKED)
    naive_s = time.perf_counter() - started
    naive_rate = len(rows) / naive_s
    print(
        f"naive one-row-per-transaction MERGE: {len(rows)} rows in {naive_s:.1f} s -> "
        f"{naive_rate:,.0f} rel/s; relationships after: {count():,} (was {before:,})"
    )
    for label, rate in results.items():
        print(f"ratio {label}/naive: {rate / naive_rate:.1f}x")
    driver.close()


if __name__ == "__main__":
    main()
