"""Do the segments recover the planted ones? Adjusted Rand index (ARI) of the segments found in
DP-GCN user embeddings against the synthetic generator's planted segments, on several graphs
(seeds, sizes, 4 to 6 segments), for the old method (k-means on L2-normalised vectors, k by
silhouette — the baseline) and the current :func:`training.segments.cluster_users` (user
vector joined with its neighbourhood, k by eigengap), both on the same embeddings in the
same run.

Each graph is generated, exported (``graphstore.export.export_source``, no Neo4j) and trained
once on the CPU; embeddings are cached under ``$DPGCN_HOME/bench-segments`` (``--retrain``
trains again), so clustering methods are compared on identical vectors::

    flock /tmp/dpgcn-heavy.lock .venv/bin/python bench/bench_segments.py [--epochs 15] [--dim 32]

Prints one line per graph (ARI at the planted k and with k chosen by the criterion, old and
new, and the new criterion without the neighbourhood) and how many graphs reach ARI >= 0.8.

``--scale USERS`` times :func:`training.segments.cluster_users` instead, at a realistic size:
seeded random float32 user embeddings and neighbourhood vectors (``--scale-dim`` each, so
features of twice that width, as the pipeline clusters them) around ``--scale-segments``
planted centres; the default k range and criterion. ``--fit-sample N`` sets
``SegmentConfig.fit_sample`` (0: all users, i.e. every candidate k fitted on everyone, the
method before the sample). One setting per process, so each peak RSS is its own::

    flock -o /tmp/dpgcn-heavy.lock .venv/bin/python bench/bench_segments.py --scale 250000 \
        --fit-sample 0        # and without --fit-sample (the default, 50,000)

Prints the wall time, the chosen k, the adjusted Rand index against the planted segments,
the users the candidates were fitted on and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import benchenv  # noqa: F401  (sets the benchmarks' own state home)
import numpy as np

TARGET = 0.8

#: name → synthetic spec keywords (users, items, events per user, planted segments, seed).
GRAPHS: dict[str, dict[str, int]] = {
    **{
        f"s4-{seed}": dict(users=400, items=150, events_per_user=30, n_segments=4, seed=seed)
        for seed in range(4)
    },
    **{
        f"s6-{seed}": dict(users=500, items=200, events_per_user=40, n_segments=6, seed=seed)
        for seed in range(4)
    },
    # The integration tests' graph (tests/integration/helpers.SMALL): sparse, 12 events/user.
    "small": dict(users=300, items=120, events_per_user=12, n_segments=6, seed=3),
    "s5-big": dict(users=1000, items=300, events_per_user=20, n_segments=5, seed=7),
    # What `make demo` loads (dpgcn demo: 2,000 users, 500 items, 6 segments, seed 0).
    "demo": dict(users=2000, items=500, events_per_user=20, n_segments=6, seed=0),
}


def embeddings(
    name: str, epochs: int, dim: int, retrain: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user embeddings [U, D], their neighbourhood vectors [U, D], planted segment [U]) of
    one graph, trained once and cached."""
    from graphstore.export import export_source
    from graphstore.sources import synthetic
    from training.config import TrainConfig
    from training.train import train_from_export

    spec = synthetic.SyntheticSpec(**GRAPHS[name])
    root = Path(os.environ["DPGCN_HOME"]) / "bench-segments" / f"{name}-e{epochs}-d{dim}"
    cache = root / "users.npz"
    if retrain or not cache.exists():
        source, truth = synthetic.generate(spec)
        export_source(source, root / "export")
        started = time.perf_counter()
        config = TrainConfig().replace(
            {"optim.epochs": epochs, "model.dim": dim, "optim.patience": 0, "device": "cpu"}
        )
        train_from_export(root / "export", root / "model", config)
        with np.load(root / "model" / "embeddings.npz", allow_pickle=False) as emb:
            ids = [str(u) for u in emb["User.ids"]]
            vectors = np.asarray(emb["User.embedding"])
        index = {u: k for k, u in enumerate(truth.user_ids)}
        planted = np.asarray([truth.segment[index[u]] for u in ids])
        np.savez(cache, vectors=vectors, planted=planted)
        (root / "spec.json").write_text(json.dumps(asdict(spec)))
        print(f"  trained {name} in {time.perf_counter() - started:.1f}s", flush=True)
    with np.load(cache) as data:
        vectors, planted = np.asarray(data["vectors"]), np.asarray(data["planted"])
    return vectors, neighbourhood(root), planted


def neighbourhood(root: Path) -> np.ndarray:
    """The users' neighbourhood vectors from the run's item embeddings and the exported
    user → item interactions (what ``workers.segment_tasks`` reads from the graph)."""
    from training.segments import export_neighbourhood

    with np.load(root / "model" / "embeddings.npz", allow_pickle=False) as emb:
        return export_neighbourhood(
            root / "export",
            [str(u) for u in emb["User.ids"]],
            [str(i) for i in emb["Item.ids"]],
            np.asarray(emb["Item.embedding"]),
        )


def old_method(x: np.ndarray, k: int | None, k_range: tuple[int, int]) -> tuple[np.ndarray, int]:
    """The baseline: k-means (10 seeded restarts) on L2-normalised vectors; k by the highest
    mean silhouette over the range (smaller k on ties)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    xn = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    best: tuple[float, int, np.ndarray] | None = None
    for kk in [k] if k is not None else range(k_range[0], k_range[1] + 1):
        labels = KMeans(n_clusters=kk, n_init=10, random_state=0).fit(xn).labels_
        score = float(silhouette_score(xn, labels, sample_size=min(4000, len(xn)), random_state=0))
        if best is None or score > best[0] + 1e-9:
            best = (score, kk, labels)
    assert best is not None
    return best[2], best[1]


def planted_users(
    users: int, dim: int, n_segments: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user embeddings [users, dim], neighbourhood vectors [users, dim], planted segment
    [users]): unit centres plus Gaussian noise of norm about 1 (overlapping segments, as
    trained embeddings are), float32 like the stored vectors."""
    rng = np.random.default_rng(seed)
    segment = rng.integers(0, n_segments, users)
    spread = 1.0 / np.sqrt(dim)
    own = rng.normal(0, 1, (n_segments, dim))
    own /= np.linalg.norm(own, axis=1, keepdims=True)
    near = rng.normal(0, 1, (n_segments, dim))
    near /= np.linalg.norm(near, axis=1, keepdims=True)
    vectors = (own[segment] + rng.normal(0, spread, (users, dim))).astype(np.float32)
    neighbourhood = (near[segment] + rng.normal(0, spread, (users, dim))).astype(np.float32)
    return vectors, neighbourhood, segment


def scale(users: int, dim: int, n_segments: int, fit_sample: int) -> None:
    """One timed :func:`cluster_users` at ``users`` users (see the module docstring)."""
    import resource

    from training.segments import SegmentConfig, adjusted_rand, cluster_users

    with open("/proc/loadavg", encoding="utf-8") as f:
        print(f"load average at start: {f.read().strip()}")
    vectors, neighbourhood, planted = planted_users(users, dim, n_segments)
    config = SegmentConfig(fit_sample=users if fit_sample <= 0 else fit_sample)
    started = time.perf_counter()
    seg = cluster_users(vectors, config, neighbourhood)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ari = adjusted_rand(planted, seg.labels)
    print(
        f"users {users:,}, features {2 * dim}, planted {n_segments}: cluster_users "
        f"{seconds:.1f} s, k {seg.k} ({seg.criterion}), ARI {ari:.4f}, "
        f"candidates fitted on {seg.fit_users:,} users, silhouette {seg.silhouette:.4f}, "
        f"peak RSS {peak:,.0f} MiB",
        flush=True,
    )
    with open("/proc/loadavg", encoding="utf-8") as f:
        print(f"load average at end: {f.read().strip()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--k-min", type=int, default=2)
    parser.add_argument("--k-max", type=int, default=10)
    parser.add_argument("--graphs", default=",".join(GRAPHS))
    parser.add_argument("--retrain", action="store_true")
    parser.add_argument("--scale", type=int, default=0, help="time cluster_users at N users")
    parser.add_argument("--scale-dim", type=int, default=64)
    parser.add_argument("--scale-segments", type=int, default=6)
    parser.add_argument("--fit-sample", type=int, default=50_000, help="0: all users")
    args = parser.parse_args()
    if args.scale:
        scale(args.scale, args.scale_dim, args.scale_segments, args.fit_sample)
        return

    from training.segments import SegmentConfig, adjusted_rand, cluster_users

    with open("/proc/loadavg", encoding="utf-8") as f:
        print(f"load average at start: {f.read().strip()}")
    print(
        f"DP-GCN {args.epochs} epochs, dim {args.dim}, CPU; k range {args.k_min}..{args.k_max}\n"
        "old = k-means on normalised user vectors, k by silhouette (the baseline); new = "
        "cluster_users: user vector + neighbourhood, k by eigengap; 'eigengap only' = new "
        "without the neighbourhood; @k* = k fixed to the planted number\n"
        f"{'graph':<8} {'planted':>7} | {'old@k*':>7} {'old':>12} | "
        f"{'new@k*':>7} {'new':>12} | {'eigengap only':>13} | secs old/new"
    )
    reached = {"old@k*": 0, "old": 0, "new@k*": 0, "new": 0, "eigengap only": 0}
    names = [n for n in args.graphs.split(",") if n]
    for name in names:
        x, nb, planted = embeddings(name, args.epochs, args.dim, args.retrain)
        k_true = len(np.unique(planted))
        k_range = {"k_min": args.k_min, "k_max": args.k_max}
        t0 = time.perf_counter()
        old_fixed, _ = old_method(x, k_true, (args.k_min, args.k_max))
        old_auto, old_k = old_method(x, None, (args.k_min, args.k_max))
        t1 = time.perf_counter()
        new_fixed = cluster_users(x, SegmentConfig(k=k_true), neighbourhood=nb)
        new_auto = cluster_users(x, SegmentConfig(**k_range), neighbourhood=nb)
        t2 = time.perf_counter()
        gap_only = cluster_users(x, SegmentConfig(**k_range))
        aris = {
            "old@k*": adjusted_rand(planted, old_fixed),
            "old": adjusted_rand(planted, old_auto),
            "new@k*": adjusted_rand(planted, new_fixed.labels),
            "new": adjusted_rand(planted, new_auto.labels),
            "eigengap only": adjusted_rand(planted, gap_only.labels),
        }
        for key, value in aris.items():
            reached[key] += value >= TARGET
        print(
            f"{name:<8} {k_true:>7} | {aris['old@k*']:>7.3f} {aris['old']:>6.3f} (k={old_k:>2}) | "
            f"{aris['new@k*']:>7.3f} {aris['new']:>6.3f} (k={new_auto.k:>2}) | "
            f"{aris['eigengap only']:>6.3f} (k={gap_only.k:>2}) | {t1 - t0:.1f}/{t2 - t1:.1f}",
            flush=True,
        )
    print(
        f"graphs with ARI >= {TARGET} (of {len(names)}): "
        + ", ".join(f"{key} {value}" for key, value in reached.items())
    )
    print(
        f"k chosen by the criterion: new {reached['new']} graphs vs old {reached['old']} "
        f"(ratio {reached['new'] / max(reached['old'], 1):.1f}x)"
    )
    with open("/proc/loadavg", encoding="utf-8") as f:
        print(f"load average at end: {f.read().strip()}")


if __name__ == "__main__":
    main()
