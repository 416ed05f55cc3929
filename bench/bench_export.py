"""Export throughput: the columnar exporter (``graphstore.export.export_subgraph``: for the
whole graph the project's procedure ``dpgcn.export.relationshipColumns``, built with Maven
from ``graphstore/assets/plugin`` by the managed server's first start, returning packed
id/time/weight arrays from one store pass, or, on a server without it, one Cypher
relationship-type scan per type; run with the node queries on ``--workers`` threads: by
default six exports in a row on 2, 2, 1, 3, 2, 2 threads, so the first and second run and the
spread are all visible; numpy assembly), then ``--cypher-runs`` exports with the Cypher reader
for comparison, against two record-per-edge baselines measured in the same run on the same
graph:

* *stream*: one Bolt record per edge (``export/get_edges``) turned into one Python tuple per
  edge and mapped through dicts — the exporter this project had before;
* *per-edge query*: one query per edge (``export/get_edge``), on a sample.

Builds a >= 1M-relationship synthetic graph (``synthetic_scale.generate_scale``) in its own state
home and ports (.state/bench, 47687/47474/46379, unless DPGCN_HOME and the port variables
are set), which it wipes::

    .venv/bin/python bench/bench_export.py [--users 50000] [--items 10000] [--reuse]

Prints edges/s of each, the ratios, and the time to turn the files into a PyG ``HeteroData``
(targets and measured figures: docs/benchmarks.md, docs/benchmarks-ingest.md).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import benchenv  # noqa: F401  (sets the benchmarks' own state home and ports)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=50000)
    parser.add_argument("--items", type=int, default=10000)
    parser.add_argument("--rels-per-user", type=float, default=20.0)
    parser.add_argument("--stream-edges", type=int, default=100_000)
    parser.add_argument("--query-edges", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=20000)
    parser.add_argument(
        "--workers",
        default="2,2,1,3,2,2",
        help="query threads of each timed export, in order (the product default is 2)",
    )
    parser.add_argument(
        "--cypher-runs",
        type=int,
        default=2,
        help="then this many 2-thread exports with the Cypher reader (reader='cypher'), for "
        "comparison with the default reader (the project's procedure when the server has it)",
    )
    parser.add_argument("--reuse", action="store_true", help="keep a graph of >= 1M rels")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="time each relationship-type scan alone: wall, server CPU, client CPU",
    )
    args = parser.parse_args()

    import numpy as np

    from dpgcn import services
    from dpgcn.settings import get_settings
    from graphstore import ingest, model, queries
    from graphstore.driver import connect, delete_all, execute
    from graphstore.export import export_subgraph
    from graphstore.sources import synthetic_scale

    subprocess.run([sys.executable, "-m", "dpgcn.cli", "services", "up"], check=True)
    conn = services.neo4j_connection(get_settings())
    driver = connect(conn.uri, conn.user, conn.password)
    rels = execute(driver, "export/count_relationships", read=True)[0]["n"]
    if not (args.reuse and rels >= 1_000_000):
        delete_all(driver)
        spec = synthetic_scale.ScaleSpec(
            users=args.users, items=args.items, rels_per_user=args.rels_per_user, seed=1
        )
        started = time.perf_counter()
        ingest.load_source(driver, synthetic_scale.generate_scale(spec), batch_size=10000)
        print(f"built the graph in {time.perf_counter() - started:.0f} s")
    rels = execute(driver, "export/count_relationships", read=True)[0]["n"]
    print(f"graph: {rels:,} relationships")

    # Columnar export to the training files, once per entry of --workers, in that order.
    out = Path(tempfile.mkdtemp(prefix="bench-export-"))
    runs: dict[int, list[dict[str, Any]]] = {}
    for k, workers in enumerate(int(w) for w in args.workers.split(",")):
        summary = export_subgraph(
            driver, out / "graph", batch_size=args.batch_size, workers=workers
        )
        runs.setdefault(workers, []).append(summary)
        print(
            f"columnar export #{k + 1} ({workers} thread(s), {summary['reader']} reader): "
            f"{summary['edges']:,} edges in {summary['seconds']:.2f} s -> "
            f"{summary['edges'] / summary['seconds']:,.0f} edges/s",
            flush=True,
        )
    for workers, done in sorted(runs.items()):
        rates = sorted(s["edges"] / s["seconds"] for s in done)
        print(
            f"columnar export, {workers} thread(s), {len(done)} run(s): best {rates[-1]:,.0f}, "
            f"median {statistics.median(rates):,.0f}, worst {rates[0]:,.0f} edges/s"
        )
    best = min((s for done in runs.values() for s in done), key=lambda s: s["seconds"])
    rate = best["edges"] / best["seconds"]
    default = runs.get(2) or next(iter(runs.values()))
    median_rate = statistics.median(s["edges"] / s["seconds"] for s in default)
    cypher_rates = []
    for k in range(args.cypher_runs):
        summary = export_subgraph(
            driver, out / "cypher", batch_size=args.batch_size, workers=2, reader="cypher"
        )
        cypher_rates.append(summary["edges"] / summary["seconds"])
        print(
            f"columnar export, Cypher reader #{k + 1} (2 threads): {summary['edges']:,} edges "
            f"in {summary['seconds']:.2f} s -> {cypher_rates[-1]:,.0f} edges/s",
            flush=True,
        )

    if args.profile:
        profile(driver, services.neo4j_spec(get_settings()).pid_file)

    # Files -> HeteroData (the training side).
    import torch
    from torch_geometric.data import HeteroData

    from training.data import load_export

    started = time.perf_counter()
    graph = load_export(out / "graph")
    data = HeteroData()
    for label, ids in graph.ids.items():
        data[label].num_nodes = len(ids)
    for et, part in graph.edges.items():
        data[et].edge_index = torch.from_numpy(part.index)
    hetero_s = time.perf_counter() - started
    print(f"files -> HeteroData: {hetero_s:.2f} s ({data.num_edges:,} edges)")

    # Baseline 1: one Bolt record + one Python tuple per edge (the previous exporter), sample.
    src, rel, dst = model.USER, model.CLICKED, model.ITEM
    index = {lab: {nid: k for k, nid in enumerate(graph.ids[lab].tolist())} for lab in (src, dst)}
    statement = queries.render("export/get_edges", src=src, type=rel, dst=dst)
    started = time.perf_counter()
    pairs = []
    with driver.session(database="neo4j") as session:
        result = session.run(statement)  # type: ignore[arg-type]
        for record in result:
            s, t = index[src].get(record["s"]), index[dst].get(record["t"])
            pairs.append((s, t, record["ts"], record["w"]))
            if len(pairs) >= args.stream_edges:
                break
        result.consume()
    np.array([[p[0] for p in pairs], [p[1] for p in pairs]])
    stream_s = time.perf_counter() - started
    stream_rate = len(pairs) / stream_s
    print(
        f"record-per-edge stream: {len(pairs):,} edges in {stream_s:.1f} s -> "
        f"{stream_rate:,.0f} edges/s"
    )

    # Baseline 2: one query per edge, on a sample of the exported CLICKED edges.
    ei = graph.edges[(src, rel, dst)].index[:, : args.query_edges]
    sample = [
        (str(graph.ids[src][a]), str(graph.ids[dst][b])) for a, b in zip(ei[0], ei[1], strict=True)
    ]
    started = time.perf_counter()
    for s_id, t_id in sample:
        execute(
            driver, "export/get_edge", {"s": s_id, "t": t_id}, read=True, src=src, type=rel, dst=dst
        )
    query_s = time.perf_counter() - started
    query_rate = len(sample) / query_s
    print(
        f"one query per edge: {len(sample):,} edges in {query_s:.1f} s -> {query_rate:,.0f} edges/s"
    )
    print(f"ratio columnar (best run)/stream: {rate / stream_rate:.1f}x")
    print(f"ratio columnar (median, default threads)/stream: {median_rate / stream_rate:.1f}x")
    print(f"ratio columnar/per-edge-query: {rate / query_rate:.1f}x")
    if cypher_rates:
        print(
            f"ratio default reader/Cypher reader (medians, 2 threads): "
            f"{median_rate / statistics.median(cypher_rates):.2f}x"
        )
    driver.close()


def profile(driver: Any, pid_file: Path) -> None:
    """Where an export's time goes: each type's scan alone (plain and with defaults), with the
    server's CPU seconds (from /proc, for the managed local server) and this process's."""
    import math
    import os

    from graphstore import model
    from graphstore.driver import execute

    def server_cpu() -> float:
        try:
            stat = Path(f"/proc/{pid_file.read_text().strip()}/stat").read_text()
        except OSError:
            return math.nan
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    params = {"since": None, "until": None, "missing": math.nan}
    for rel in dict.fromkeys(t for _, t, _ in model.EDGE_TYPES):
        for name in ("export/get_type_columns", "export/get_type_columns_coalesced"):
            wall, cpu, srv = time.perf_counter(), time.process_time(), server_cpu()
            rec = execute(driver, name, params, read=True, type=rel)[0]
            edges = len(rec["s"])
            wall, cpu, srv = (
                time.perf_counter() - wall,
                time.process_time() - cpu,
                server_cpu() - srv,
            )
            print(
                f"profile {rel:15s} {name.split('/')[1]:27s} {edges:8,} edges "
                f"wall {wall:.3f} s, server CPU {srv:.2f} s, client CPU {cpu:.2f} s"
            )


if __name__ == "__main__":
    main()
