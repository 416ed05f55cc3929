"""Ingestion throughput: the batched UNWIND loader vs a naive one-row-per-transaction MERGE
loader, both measured in this run against the same managed Neo4j.

Uses its own state home and ports (.state/bench, 47687/47474/46379) and wipes that graph::

    .venv/bin/python bench/bench_ingest.py [--users 20000] [--items 4000] [--naive-rows 2000]

Prints relationships/s of each and their ratio (issue targets: >= 50k rel/s, >= 30x naive).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("DPGCN_HOME", str(ROOT / ".state" / "bench"))
os.environ.setdefault("NEO4J_BOLT_PORT", "47687")
os.environ.setdefault("NEO4J_HTTP_PORT", "47474")
os.environ.setdefault("REDIS_PORT", "46379")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=20000)
    parser.add_argument("--items", type=int, default=4000)
    parser.add_argument("--naive-rows", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=5000)
    args = parser.parse_args()

    from dpgcn import services
    from dpgcn.settings import get_settings
    from graphstore import ingest, model, synthetic
    from graphstore.driver import connect, delete_all, execute

    subprocess.run([sys.executable, "-m", "dpgcn.cli", "services", "up"], check=True)
    conn = services.neo4j_connection(get_settings())
    driver = connect(conn.uri, conn.user, conn.password)
    source, _ = synthetic.generate(
        synthetic.SyntheticSpec(users=args.users, items=args.items, events_per_user=20, seed=1)
    )
    rel_parts = [*source.interactions, "led_to", "query_terms", "item_terms", "item_categories"]

    delete_all(driver)
    started = time.perf_counter()
    summary = ingest.load_source(driver, source, batch_size=args.batch_size)
    batched_s = time.perf_counter() - started
    rels = sum(summary.written.get(p, 0) for p in rel_parts)
    nodes = sum(summary.written.get(p, 0) for p in ("users", "items", "queries", "terms"))

    # naive: the same CLICKED rows again, one MERGE per transaction, on a sample
    rows = list(source.interactions[model.CLICKED])[: args.naive_rows]
    started = time.perf_counter()
    for row in rows:
        execute(driver, "ingest/merge_interactions", {"rows": [row]}, type=model.CLICKED)
    naive_s = time.perf_counter() - started

    batched_rate = rels / batched_s
    naive_rate = len(rows) / naive_s
    print(f"graph: {nodes} nodes, {rels} relationships (synthetic, {args.users} users)")
    print(
        f"batched UNWIND loader: {batched_s:.1f} s for nodes + relationships -> "
        f"{batched_rate:,.0f} rel/s (batch {args.batch_size})"
    )
    print(
        f"naive one-row-per-transaction MERGE: {len(rows)} rows in {naive_s:.1f} s -> "
        f"{naive_rate:,.0f} rel/s"
    )
    print(f"ratio batched/naive: {batched_rate / naive_rate:.1f}x")
    driver.close()


if __name__ == "__main__":
    main()
