"""Scale run (slow; not part of the tests): load a ``synthetic.generate_scale`` shop of
``--users`` users / ``--items`` items / ~``--rels-per-user`` interactions each into an empty
managed Neo4j with the online loader, export it, and report wall time, rate, the loader
process's peak RSS and the Neo4j store size.

Full scale (1M users / 200k items / ~20M relationships)::

    .venv/bin/python bench/scale_run.py --scale 1

Dry run at 1/20 scale (50k users / 10k items / ~1M relationships)::

    .venv/bin/python bench/scale_run.py --scale 0.05

Uses the benchmark home and ports (.state/bench, 47687/47474/46379) and wipes that graph.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchenv  # noqa: F401  (sets the benchmarks' own state home and ports)


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=0.05)
    parser.add_argument("--rels-per-user", type=float, default=20.0)
    parser.add_argument("--batch-size", type=int, default=10000)
    parser.add_argument("--no-export", action="store_true")
    args = parser.parse_args()

    from dpgcn import services
    from dpgcn.settings import get_settings
    from graphstore import ingest, model, synthetic
    from graphstore.driver import connect, delete_all, execute
    from graphstore.export import export_subgraph

    subprocess.run([sys.executable, "-m", "dpgcn.cli", "services", "up"], check=True)
    settings = get_settings()
    conn = services.neo4j_connection(settings)
    driver = connect(conn.uri, conn.user, conn.password)
    spec = synthetic.ScaleSpec(
        users=round(1_000_000 * args.scale),
        items=round(200_000 * args.scale),
        rels_per_user=args.rels_per_user,
        seed=7,
    )
    print(f"scale {args.scale}: {spec.users:,} users, {spec.items:,} items", flush=True)
    delete_all(driver)
    store = Path(os.environ["DPGCN_HOME"]) / "neo4j" / "data"
    started = time.perf_counter()
    summary = ingest.load_source(driver, synthetic.generate_scale(spec), batch_size=args.batch_size)
    seconds = time.perf_counter() - started
    parts = [model.SEARCHED, *model.INTERACTIONS, "led_to", "query_terms", "item_terms"]
    rels = sum(summary.written.get(p, 0) for p in [*parts, "item_categories"])
    nodes = sum(summary.written.get(p, 0) for p in ("users", "items", "queries", "terms"))
    in_graph = int(execute(driver, "export/count_relationships", read=True)[0]["n"])
    print(
        f"load: {nodes:,} nodes + {rels:,} relationships in {seconds:.0f} s -> "
        f"{rels / seconds:,.0f} rel/s; in graph: {in_graph:,}; "
        f"loader peak RSS {peak_rss_mib():,.0f} MiB",
        flush=True,
    )
    print(
        f"Neo4j store: databases {dir_size(store / 'databases' / 'neo4j') / 2**30:.2f} GiB, "
        f"transaction logs {dir_size(store / 'transactions' / 'neo4j') / 2**30:.2f} GiB",
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
    driver.close()


if __name__ == "__main__":
    main()
