"""Write-back throughput: ``graphstore.writeback.write_embeddings`` (UNWIND batches) against
a one-transaction-per-node baseline on a sample, both in the same run, with the slot's
vector index in place (it is created before the first write, as in production).

Uses its own state home and ports (.state/bench, 47687/47474/46379) and wipes that graph::

    .venv/bin/python bench/bench_writeback.py [--nodes 100000] [--dim 64] [--sample 1000]

Prints nodes/s of each batch size tried and of the baseline, and the ratio (issue target:
>= 20k nodes/s for 100k 64-d embeddings).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import benchenv  # noqa: F401  (sets the benchmarks' own state home and ports)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--sample", type=int, default=1000)
    parser.add_argument("--batch-sizes", default="2000,10000")
    args = parser.parse_args()

    import numpy as np

    from dpgcn import services
    from dpgcn.settings import get_settings
    from graphstore import ingest, model, writeback
    from graphstore.driver import connect, delete_all, execute
    from graphstore.records import GraphSource

    subprocess.run([sys.executable, "-m", "dpgcn.cli", "services", "up"], check=True)
    conn = services.neo4j_connection(get_settings())
    driver = connect(conn.uri, conn.user, conn.password)
    delete_all(driver)
    ids = [f"u{k}" for k in range(args.nodes)]
    ingest.load_source(
        driver,
        GraphSource(name="bench", users=[{"id": i, "consent": True} for i in ids]),
        batch_size=20000,
    )
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(args.nodes, args.dim)).astype(np.float32)

    rates: dict[int, float] = {}
    for k, size in enumerate(int(b) for b in args.batch_sizes.split(",")):
        version = f"bench-wb-{k}"
        writeback.begin_version(driver, version, args.dim, "bench")
        started = time.perf_counter()
        n = writeback.write_embeddings(driver, version, model.USER, ids, vectors, batch_size=size)
        seconds = time.perf_counter() - started
        rates[size] = n / seconds
        print(
            f"write_embeddings batch {size}: {n:,} nodes x {args.dim}-d in {seconds:.1f} s -> "
            f"{rates[size]:,.0f} nodes/s"
        )
        writeback.complete_version(driver, version, {model.USER: n}, {})
        writeback.activate_version(driver, version)  # the next version goes to the other slot

    version = "bench-wb-base"
    writeback.begin_version(driver, version, args.dim, "bench")
    sample = ids[: args.sample]
    started = time.perf_counter()
    n = writeback.write_embeddings(
        driver, version, model.USER, sample, vectors[: args.sample], batch_size=1
    )
    seconds = time.perf_counter() - started
    base = n / seconds
    print(f"one transaction per node: {n:,} nodes in {seconds:.1f} s -> {base:,.0f} nodes/s")
    index = execute(
        driver, "writeback/get_vector_index", {"name": model.vector_index_name(model.USER, "a")}
    )
    print(f"vector index user_embedding_a present: {bool(index)}")
    for size, rate in rates.items():
        print(f"ratio batch {size}/per-node: {rate / base:.1f}x")
    driver.close()


if __name__ == "__main__":
    main()
