"""Write-back throughput: ``graphstore.writeback.write_embeddings`` against a
one-transaction-per-node baseline on a sample, both in the same run. Every timed write ends
with the slot's vector index ONLINE and holding the new vectors (``db.awaitIndex`` inside the
time). Each run is ``mode:batch:threads[:m:ef:q]``:

* ``inplace``: the index (with HNSW options ``m``, ``ef_construction``, quantization ``q`` =
  0/1; the writer's defaults when left out) exists during the write: every commit updates it;
* ``rebuild``: the slot's index is dropped, the vectors written, the index created again and
  awaited ONLINE.

Each run starts from a freshly loaded graph of ``--nodes`` users (untimed); with
``--rewrite`` the slot first holds another version's vectors, indexed (untimed), so the timed
write replaces them — the steady state of a retrain. After each run the recall@10 of the slot's
index against exact cosine search is measured on ``--recall`` random queries, asking the index
for 10 and for 41 candidates (the API's similar-items query asks for 4k + 1).

``--data gaussian`` (i.i.d. N(0, 1) vectors: the hard case for HNSW) or ``clustered`` (a
mixture of Gaussians with a decaying spectrum and a common offset, shaped like trained
embeddings: its statistics are printed).

Uses its own state home and ports (.state/bench, 47687/47474/46379) unless the environment
names others, and wipes that graph::

    .venv/bin/python bench/bench_writeback.py [--nodes 100000] [--dim 64] [--sample 1000]
        [--data gaussian|clustered] [--runs inplace:5000:1,rebuild:5000:1:16:100:0]
        [--rewrite] [--recall 200]

Issue target: >= 20k nodes/s for 100k 64-d embeddings, index included.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import benchenv  # noqa: F401  (sets the benchmarks' own state home and ports)

if TYPE_CHECKING:
    import numpy as np


def make_vectors(kind: str, n: int, dim: int, seed: int) -> np.ndarray:
    """``gaussian``: i.i.d. N(0, 1). ``clustered``: 100 Gaussian clusters whose centres and
    within-cluster spread both follow the spectrum exp(-i/8) in a random basis, plus a common
    offset (trained embeddings are anisotropic and share a direction: in the demo's, the
    mean pairwise cosine is ~0.8 and 5 directions hold ~70 % of the variance)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        return rng.normal(size=(n, dim)).astype(np.float32)
    if kind != "clustered":
        raise SystemExit(f"unknown --data {kind!r}")
    scale = np.exp(-np.arange(dim) / 8.0)
    centres = rng.normal(size=(100, dim)) * scale
    points = centres[rng.integers(0, 100, size=n)] + 0.5 * rng.normal(size=(n, dim)) * scale
    basis, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    offset = rng.normal(size=dim)
    offset *= 2.5 / np.linalg.norm(offset)
    return (points @ basis.T + offset).astype(np.float32)


def describe(vectors: np.ndarray) -> str:
    import numpy as np

    sample = vectors[:2000] / np.linalg.norm(vectors[:2000], axis=1, keepdims=True)
    cos = float((sample @ sample.T).mean())
    sv = np.linalg.svd(vectors[:20000] - vectors[:20000].mean(0), compute_uv=False) ** 2
    share = sv[:5].sum() / sv.sum()
    return f"mean pairwise cosine {cos:.2f}, top-5 directions {share:.0%} of variance"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--sample", type=int, default=1000)
    parser.add_argument("--data", default="gaussian", choices=["gaussian", "clustered"])
    parser.add_argument("--runs", default="inplace:5000:1,rebuild:5000:1")
    parser.add_argument("--rewrite", action="store_true", help="time a rewrite of a full slot")
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
    ids = [f"u{k}" for k in range(args.nodes)]
    vectors = make_vectors(args.data, args.nodes, args.dim, seed=0)
    print(f"data: {args.data}, {args.nodes:,} x {args.dim}-d; {describe(vectors)}", flush=True)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    picks = np.random.default_rng(1).choice(args.nodes, size=args.recall, replace=False)
    exact = [set(np.argsort(-(unit @ unit[q]))[:10].tolist()) for q in picks.tolist()]

    def fresh_graph() -> None:
        delete_all(driver)
        ingest.load_source(
            driver,
            GraphSource(name="bench", users=[{"id": i, "consent": True} for i in ids]),
            batch_size=20000,
        )

    def recall(drv: Driver, slot: str, k: int) -> float:
        """Mean share of the exact cosine top 10 among the index's best 10 of ``k``."""
        name = model.vector_index_name(model.USER, slot)
        hits = 0
        for q, truth in zip(picks.tolist(), exact, strict=True):
            params = {"name": name, "k": k, "vec": vectors[q].tolist()}
            found = execute(drv, "writeback/get_nearest_nodes", params, read=True)[:10]
            hits += len(truth & {int(str(r["id"])[1:]) for r in found})
        return hits / (10 * len(picks))

    rates: dict[str, float] = {}
    for k, run in enumerate(args.runs.split(",")):
        mode, size, threads, *hnsw = run.split(":")
        options = writeback.DEFAULT_INDEX_OPTIONS
        if hnsw:
            m, ef, q = (int(x) for x in hnsw)
            options = writeback.IndexOptions(m=m, ef_construction=ef, quantization=bool(q))
        fresh_graph()
        if args.rewrite:  # the slot holds another version's indexed vectors
            writeback.begin_version(driver, f"bench-pre-{k}", args.dim, "bench")
            writeback.write_embeddings(
                driver,
                f"bench-pre-{k}",
                model.USER,
                ids,
                make_vectors(args.data, args.nodes, args.dim, seed=k + 10),
                batch_size=int(size),
                index_options=options,
            )
        version = f"bench-wb-{k}"
        writeback.begin_version(driver, version, args.dim, "bench")
        writes_done = [0.0]

        def mark(_n: int, done: list[float] = writes_done) -> None:
            done[0] = time.perf_counter()

        load = Path("/proc/loadavg").read_text().split()[0]
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
            index_options=options,
            progress=mark,
        )
        seconds = time.perf_counter() - started
        rates[run] = n / seconds
        slot = str(writeback.get_model(driver, version)["slot"])  # type: ignore[index]
        info = writeback.get_vector_index(driver, model.vector_index_name(model.USER, slot))
        assert info is not None and info["state"] == "ONLINE", info
        print(
            f"{mode}, batch {size}, {threads} thread(s), m {info['m']} ef_construction "
            f"{info['ef_construction']} quantization {info['quantization']}: {n:,} nodes in "
            f"{seconds:.1f} s (writes {writes_done[0] - started:.1f} s, then index "
            f"{started + seconds - writes_done[0]:.1f} s) -> {rates[run]:,.0f} nodes/s "
            f"[load {load}]",
            flush=True,
        )
        if args.recall:
            print(
                f"  recall@10: {recall(driver, slot, 10):.3f} (k=10), "
                f"{recall(driver, slot, 41):.3f} (best 10 of k=41)",
                flush=True,
            )

    fresh_graph()
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
    for run, rate in rates.items():
        print(f"ratio {run} / per-node: {rate / base:.1f}x")
    driver.close()


if __name__ == "__main__":
    main()
