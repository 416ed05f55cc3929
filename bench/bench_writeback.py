"""Write-back throughput: ``graphstore.writeback.write_embeddings`` (UNWIND batches on
parallel threads) against a one-transaction-per-node baseline on a sample, both in the same
run. Every timed write ends with the slot's vector index ONLINE and holding the new vectors:

* *rebuild* (the default for >= ``REBUILD_INDEX_MIN`` rows): the slot's index is dropped,
  the vectors written, the index created again and awaited ONLINE — all inside the time;
* *in place*: the index exists during the write (every commit updates it), as before.

Uses its own state home and ports (.state/bench, 47687/47474/46379) and wipes that graph::

    .venv/bin/python bench/bench_writeback.py [--nodes 100000] [--dim 64] [--sample 1000]
        [--runs rebuild:5000:2,inplace:2000:1] [--recall 200]

Prints nodes/s of each run (mode:batch:threads) and of the baseline, the ratios, and the
recall@10 of the rebuilt index against exact cosine search on ``--recall`` random queries
(issue target: >= 20k nodes/s for 100k 64-d embeddings, index included).
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
    parser.add_argument("--runs", default="rebuild:5000:2,inplace:2000:1")
    parser.add_argument("--recall", type=int, default=200, help="queries for recall@10")
    args = parser.parse_args()

    import numpy as np
    from neo4j import Driver

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

    def recall(drv: Driver, slot: str) -> float:
        """Mean share of the exact cosine top 10 that the slot's vector index returns."""
        unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        picks = rng.choice(len(ids), size=args.recall, replace=False)
        hits = 0
        for q in picks.tolist():
            exact = set(np.argsort(-(unit @ unit[q]))[:10].tolist())
            name = model.vector_index_name(model.USER, slot)
            params = {"name": name, "k": 10, "vec": vectors[q].tolist()}
            found = execute(drv, "writeback/get_nearest_nodes", params, read=True)
            hits += len(exact & {int(str(r["id"])[1:]) for r in found})
        return hits / (10 * len(picks))

    rates: dict[str, float] = {}
    for k, run in enumerate(args.runs.split(",")):
        mode, size, threads = run.split(":")
        version = f"bench-wb-{k}"
        writeback.begin_version(driver, version, args.dim, "bench")
        started = time.perf_counter()
        n = writeback.write_embeddings(
            driver,
            version,
            model.USER,
            ids,
            vectors,
            batch_size=int(size),
            workers=int(threads),
            rebuild_index=mode == "rebuild",
        )
        seconds = time.perf_counter() - started
        rates[run] = n / seconds
        print(
            f"write_embeddings {mode}, batch {size}, {threads} thread(s): {n:,} nodes x "
            f"{args.dim}-d in {seconds:.1f} s (index ONLINE included) -> "
            f"{rates[run]:,.0f} nodes/s",
            flush=True,
        )
        writeback.complete_version(driver, version, {model.USER: n}, {})
        active = writeback.activate_version(driver, version)  # next version: the other slot
        if args.recall and mode == "rebuild":
            print(f"recall@10 of {active.slot} index: {recall(driver, active.slot):.3f}")

    version = "bench-wb-base"
    writeback.begin_version(driver, version, args.dim, "bench")
    sample = ids[: args.sample]
    started = time.perf_counter()
    n = writeback.write_embeddings(
        driver,
        version,
        model.USER,
        sample,
        vectors[: args.sample],
        batch_size=1,
        workers=1,
        rebuild_index=False,
    )
    seconds = time.perf_counter() - started
    base = n / seconds
    print(f"one transaction per node: {n:,} nodes in {seconds:.1f} s -> {base:,.0f} nodes/s")
    index = execute(
        driver, "writeback/get_vector_index", {"name": model.vector_index_name(model.USER, "a")}
    )
    print(f"vector index user_embedding_a present: {bool(index)}")
    for run, rate in rates.items():
        print(f"ratio {run}/per-node: {rate / base:.1f}x")
    driver.close()


if __name__ == "__main__":
    main()
