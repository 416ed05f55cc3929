"""Benchmark: one DP-GCN training epoch against one LightGCN epoch on the same graph.

Both models run the same harness epoch (:func:`training.train.train_epoch`: BCE over the
training interactions with sampled negatives, whole-graph propagation at every step) at the
same batch size. The DP-GCN epoch is the supervised part; its DDPG stage runs once after
training and is timed separately. Target: DP-GCN within 2× of LightGCN.

    .venv/bin/python bench/bench_training_epoch.py                 # demo graph, 2,000 users
    .venv/bin/python bench/bench_training_epoch.py --export DIR    # any export directory
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
from training.data import (  # noqa: E402
    eval_candidates,
    load_export,
    split_interactions,
)
from training.dataset import build_graph_data  # noqa: E402
from training.device import make_grad_scaler, seed_everything, select_device  # noqa: E402
from training.models import build_model  # noqa: E402
from training.train import FitResult, make_optimizer, train_epoch, train_policy  # noqa: E402


class Runner:
    """One model with its optimiser, ready to run harness epochs."""

    def __init__(self, name: str, export: Path, config: TrainConfig) -> None:
        self.device = select_device(config.device)
        seed_everything(config.seed)
        self.split = split_interactions(load_export(export), config.seed, config.reward_of())
        self.data = build_graph_data(self.split, self.device, config.history_len)
        self.config = config.replace(model=name)
        self.model = build_model(name, self.data, self.config).to(self.device)
        self.opt = make_optimizer(self.model.parameters(), self.config.lr)
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
        train_policy(result, *eval_candidates(self.split, "val", self.config.click_negatives))
        return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--export", type=Path, help="export directory (default: demo graph)")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--per-user", type=int, default=20, help="interactions per user")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=TrainConfig().batch_size)
    parser.add_argument("--dim", type=int, default=TrainConfig().dim)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = TrainConfig(batch_size=args.batch_size, dim=args.dim, device=args.device)
    with tempfile.TemporaryDirectory() as tmp:
        export = args.export
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
        runners = {name: Runner(name, export, config) for name in ("lightgcn", "dpgcn")}
        times: dict[str, list[float]] = {name: [] for name in runners}
        for r in runners.values():
            r.epoch()  # warm-up
        for _ in range(args.epochs):  # interleaved, so load changes hit both models alike
            for name, r in runners.items():
                times[name].append(r.epoch())
        med = {name: statistics.median(t) for name, t in times.items()}
        for name, t in times.items():
            print(
                f"{name:9s} epoch: median {med[name]:.3f}s over {args.epochs} "
                f"(all: {', '.join(f'{x:.3f}' for x in t)})"
            )
        print(f"dpgcn DDPG stage (once per training): {runners['dpgcn'].policy_stage():.2f}s")
        ratio = med["dpgcn"] / med["lightgcn"]
        best = min(times["dpgcn"]) / min(times["lightgcn"])
        print(f"ratio of fastest epochs dpgcn / lightgcn: {best:.2f}x (less sensitive to load)")
        print(
            f"ratio dpgcn / lightgcn: {ratio:.2f}x (target <= 2x): {'OK' if ratio <= 2 else 'OVER'}"
        )


if __name__ == "__main__":
    main()
