"""Benchmark: training epochs of DP-GCN, LightGCN and their PyG-module versions, same run.

Every model runs the same harness epoch (:func:`training.train.train_epoch`: BCE over the
training interactions with sampled negatives, whole-graph propagation at every step) at the
same batch size, epochs interleaved so that load from other processes hits them alike:

* ``lightgcn``: the project's LightGCN (cached-transpose sparse product);
* ``lightgcn_pyg``: PyG's stock ``LightGCN`` module (``torch.sparse`` CSR ``adj_t``);
* ``dpgcn``: DP-GCN (typed propagation over every relation, static user features fused at
  the input).

Target: a DP-GCN epoch ≤ 1.5× a LightGCN epoch on CPU. The DP-GCN epoch is the supervised
part; its DDPG stage runs once after training and is timed separately with ``--policy``.

    .venv/bin/python bench/bench_training_epoch.py                 # demo graph, 2,000 users
    .venv/bin/python bench/bench_training_epoch.py --export DIR    # any export directory
    .venv/bin/python bench/bench_training_epoch.py --ml100k /work/shared/data/ml-100k
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "unit" / "training"))

from training.config import TrainConfig  # noqa: E402
from training.data import load_export  # noqa: E402
from training.dataset import build_graph_data  # noqa: E402
from training.device import make_grad_scaler, seed_everything, select_device  # noqa: E402
from training.loop import (  # noqa: E402
    FitResult,
    Validator,
    train_epoch,
    train_policy,
)
from training.models import build_model  # noqa: E402
from training.optim import make_optimizer  # noqa: E402
from training.splits import split_interactions  # noqa: E402

MODELS = ("lightgcn", "lightgcn_pyg", "dpgcn")


class Runner:
    """One model with its optimiser, ready to run harness epochs."""

    def __init__(self, name: str, export: Path, config: TrainConfig) -> None:
        self.device = select_device(config.device)
        seed_everything(config.seed)
        self.split = split_interactions(load_export(export), config.seed, config.policy.reward_of())
        self.data = build_graph_data(self.split, self.device, config.model.history_len)
        self.config = config.replace({"model.name": name})
        seed_everything(config.seed)
        self.model = build_model(self.config.model.name, self.data, self.config).to(self.device)
        self.opt = make_optimizer(self.model.parameters(), self.config.optim.lr)
        self.rng = np.random.default_rng(0)
        self.scaler = make_grad_scaler(self.device, False)

    def epoch(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        train_epoch(
            self.model, self.split, self.config, self.opt, self.rng, self.device, self.scaler, False
        )
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t

    def policy_stage(self) -> float:
        t = time.perf_counter()
        result = FitResult(model=self.model, data=self.data, config=self.config, device=self.device)
        train_policy(result, Validator(self.split, self.config))
        return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--export", type=Path, help="export directory (default: demo graph)")
    parser.add_argument("--ml100k", type=Path, help="MovieLens-100K directory (u.data, ...)")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--per-user", type=int, default=20, help="interactions per user")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=TrainConfig().optim.batch_size)
    parser.add_argument("--dim", type=int, default=TrainConfig().model.dim)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated subset")
    parser.add_argument("--policy", action="store_true", help="also time the DDPG stage")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = TrainConfig().replace(
        {"optim.batch_size": args.batch_size, "model.dim": args.dim, "device": args.device}
    )
    names = [m for m in args.models.split(",") if m]
    with tempfile.TemporaryDirectory() as tmp:
        export = args.export
        if export is None and args.ml100k is not None:
            from export_factory import write_ml100k_export

            export = write_ml100k_export(args.ml100k, Path(tmp) / "ml100k")
        if export is None:
            from export_factory import write_random_export

            export = write_random_export(
                Path(tmp) / "demo",
                n_users=args.users,
                n_items=args.items,
                n_queries=args.queries,
                n_terms=400,
                n_categories=20,
                interactions_per_user=args.per_user,
            )
        graph = load_export(export)
        n_edges = sum(e.num_edges for e in graph.edges.values())
        print(
            f"graph: {', '.join(f'{t}={graph.num_nodes(t)}' for t in graph.node_types)}; "
            f"{n_edges} edges; batch {args.batch_size}; dim {args.dim}; "
            f"device {select_device(args.device)}; torch threads {torch.get_num_threads()}"
        )
        runners = {name: Runner(name, export, config) for name in names}
        times: dict[str, list[float]] = {name: [] for name in runners}
        for r in runners.values():
            r.epoch()  # warm-up
        for _ in range(args.epochs):  # interleaved, so load changes hit every model alike
            for name, r in runners.items():
                times[name].append(r.epoch())
        med = {name: statistics.median(t) for name, t in times.items()}
        for name, t in times.items():
            print(
                f"{name:13s} epoch: median {med[name]:.3f}s, fastest {min(t):.3f}s over "
                f"{args.epochs} (all: {', '.join(f'{x:.3f}' for x in t)})"
            )
        if args.policy and "dpgcn" in runners:
            print(f"dpgcn DDPG stage (once per training): {runners['dpgcn'].policy_stage():.2f}s")
        for a, b, target in (
            ("dpgcn", "lightgcn", 1.5),
            ("lightgcn_pyg", "lightgcn", None),
        ):
            if a in med and b in med:
                ratio, best = med[a] / med[b], min(times[a]) / min(times[b])
                verdict = "" if target is None else f" (target <= {target}x: "
                verdict += "" if target is None else ("OK)" if ratio <= target else "OVER)")
                print(
                    f"ratio {a} / {b}: medians {ratio:.2f}x, fastest epochs {best:.2f}x" + verdict
                )


if __name__ == "__main__":
    main()
