"""Benchmark: full-batch vs neighbour-sampled mini-batch training of DP-GCN, same run.

For each seed, DP-GCN (without its DDPG stage by default: the stage is the same for both) is
trained twice on the same split, ``TrainConfig(batching="full")`` and
``TrainConfig(batching="minibatch")`` (PyG ``LinkNeighborLoader``, fan-out ``--fanout``),
everything else at the defaults (leave-last-out, early stopping on validation NDCG@10). It
reports per run the test NDCG@10 with its 95 % bootstrap interval over users, the paired
bootstrap of the difference (mini-batch − full-batch), the best and last epochs, and the
mean training seconds per epoch (the epoch's optimisation steps, without the validation) and
per epoch with validation. Results go to ``--out`` as JSON; the table is printed.

    .venv/bin/python bench/bench_training_minibatch.py --ml100k /work/shared/data/ml-100k \\
        --seeds 0 --threads 2 --out /tmp/bench-minibatch.json
    .venv/bin/python bench/bench_training_minibatch.py --export DIR --seeds 0,1,2

``--fanout=-1,-1`` (with ``=``: argparse reads a bare ``-1`` as an option) samples every
neighbour, so the two paths differ only in how pairs and negatives are batched
(``docs/benchmarks-training.md`` §4e).

``--summarize A.json B.json`` prints the seeds of earlier result files together (mean of the
seeds, intervals over users of the seed-averaged per-user values, paired difference).

``--epoch-of DIR [DIR ...]`` times one mini-batch epoch (the optimisation steps only) on each
export directory, e.g. the scale run's exports (``.state/bench/artifacts/runs/*/export``), and
prints the steps and seconds per step; run it from two source trees in one sitting for a
before/after figure. With ``--steps N`` it times only the first ``N`` steps of that epoch
instead (after ``--warmup`` untimed ones), split into sampling, forward, backward and
optimiser step (the forward pass as gather, propagate and loss), with the mean sampled nodes
and edges per batch: a per-step figure of a large export in seconds, for before/after runs on
the scale run's exports. ``--validate`` then times one validation of the epoch loop on the
same model (whole-graph encode, click AUC, ranking) and its share per step of an epoch.

``--scaling 2000,8000`` instead times one epoch of each path on random exports of that many
users (``--per-user`` interactions each, a quarter as many items; clustered as in the unit
tests' ``export_factory``), to see where mini-batches become the faster path
(``TrainConfig.optim.minibatch_min_edges``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "unit" / "training"))

from training.config import TrainConfig  # noqa: E402
from training.data import load_export  # noqa: E402
from training.loop import fit, split_for  # noqa: E402
from training.metrics import FloatVector, bootstrap_ci, paired_bootstrap  # noqa: E402
from training.train import evaluate_fit  # noqa: E402

MODES = ("full", "minibatch")


def run_seed(export: Path, base: TrainConfig, seed: int) -> dict[str, Any]:
    graph = load_export(export)
    config = base.replace({"seed": seed})
    split = split_for(graph, config)
    out: dict[str, Any] = {"seed": seed, "train_interactions": len(split.train)}
    per_user: dict[str, dict[str, FloatVector]] = {}
    for mode in MODES:
        t0 = time.perf_counter()
        result = fit(split, config.replace({"optim.batching": mode}))
        wall = time.perf_counter() - t0
        users: dict[str, FloatVector] = {}
        test = evaluate_fit(result, "test", per_user=users)
        per_user[mode] = users
        lo, hi = bootstrap_ci(users["ndcg@10"])
        hist = result.history
        out[mode] = {
            "batching": result.batching,
            "ndcg@10": test["ndcg@10"],
            "ndcg@10_ci": [lo, hi],
            "recall@10": test["recall@10"],
            "auc": test["auc"],
            "best_epoch": result.best_epoch,
            "last_epoch": result.last_epoch,
            "train_s_per_epoch": statistics.mean(result.epoch_train_seconds),
            "epoch_s_with_val": statistics.mean(h["seconds"] for h in hist),
            "fit_seconds": wall,
        }
    full, mini = per_user["full"], per_user["minibatch"]
    assert np.array_equal(full["users"], mini["users"]), "both runs rank the same users"
    out["paired_ndcg@10"] = paired_bootstrap(mini["ndcg@10"], full["ndcg@10"])
    out["per_user"] = {  # for --summarize: intervals over several seeds
        "users": full["users"].astype(np.int64).tolist(),
        "full": np.asarray(full["ndcg@10"]).tolist(),
        "minibatch": np.asarray(mini["ndcg@10"]).tolist(),
    }
    return out


def summarize(files: list[Path]) -> None:
    """The seeds of several result files together: per path the mean over seeds of the test
    NDCG@10 with a bootstrap interval over users (each user's value averaged over the seeds),
    and the paired bootstrap of the difference (mini-batch − full-batch) the same way. Users
    ranked in only some seeds are left out of the intervals."""
    runs = [r for f in files for r in json.loads(f.read_text())["runs"]]
    common = set.intersection(*(set(r["per_user"]["users"]) for r in runs))
    per_path: dict[str, np.ndarray] = {}
    for mode in MODES:
        rows = []
        for r in runs:
            pos = {u: k for k, u in enumerate(r["per_user"]["users"])}
            keep = [pos[u] for u in sorted(common)]
            rows.append(np.asarray(r["per_user"][mode])[keep])
        per_path[mode] = np.mean(rows, axis=0)
    seeds = ",".join(str(r["seed"]) for r in runs)
    print(f"seeds {seeds}; {len(common)} users ranked in every seed")
    print("| batching | test NDCG@10, mean of seeds [95% CI] | per seed |")
    print("|---|---|---|")
    for mode in MODES:
        lo, hi = bootstrap_ci(per_path[mode])
        each = ", ".join(f"{r[mode]['ndcg@10']:.4f}" for r in runs)
        print(
            f"| {mode} | {np.mean([r[mode]['ndcg@10'] for r in runs]):.4f} "
            f"[{lo:.4f}, {hi:.4f}] | {each} |"
        )
    d = paired_bootstrap(per_path["minibatch"], per_path["full"])
    each = ", ".join(f"{r['paired_ndcg@10']['diff']:+.4f}" for r in runs)
    print(
        f"| mini − full | {d['diff']:+.4f} [{d['lo']:+.4f}, {d['hi']:+.4f}] p={d['p']:.3f} "
        f"| {each} |"
    )


def run_scaling(users: int, per_user: int, base: TrainConfig, tmp: Path) -> dict[str, Any]:
    from export_factory import write_random_export

    export = write_random_export(
        tmp / f"random-{users}",
        n_users=users,
        n_items=max(users // 4, 10),
        n_queries=0,
        n_terms=50,
        n_categories=8,
        interactions_per_user=per_user,
        seed=0,
        clusters=max(4, users // 500),
    )
    config = base.replace({"optim.epochs": 1, "optim.patience": 0, "eval.max_users": 500})
    split = split_for(load_export(export), config)
    out: dict[str, Any] = {"users": users, "train_interactions": len(split.train)}
    for mode in MODES:
        result = fit(split, config.replace({"optim.batching": mode}))
        out[mode] = result.epoch_train_seconds[0]
    return out


def time_epoch(export: Path, base: TrainConfig) -> dict[str, Any]:
    """One mini-batch epoch of ``base`` on ``export``: its training seconds and steps."""
    config = base.replace(
        {
            "optim.batching": "minibatch",
            "optim.epochs": 1,
            "optim.patience": 0,
            "eval.max_users": 500,
        }
    )
    split = split_for(load_export(export), config)
    result = fit(split, config)
    steps = -(-len(split.train) // config.optim.batch_size)
    seconds = result.epoch_train_seconds[0]
    return {
        "export": str(export),
        "train_interactions": len(split.train),
        "steps": steps,
        "epoch_s": seconds,
        "s_per_step": seconds / steps,
    }


def profile_steps(
    export: Path,
    base: TrainConfig,
    steps: int,
    warmup: int,
    fanout_per: str | None = None,
    validate: bool = False,
) -> dict[str, Any]:
    """The first ``steps`` mini-batch steps of ``base`` on ``export`` (after ``warmup``
    untimed ones), each split into its phases: sampling (the loader's next batch), the
    forward pass (:func:`~training.minibatch.minibatch_loss`: ``gather``, the batch's input
    vectors up to the encoder; ``propagate``, the encoder; ``loss``, the score head and the
    loss), backward, optimiser step; with the mean nodes and edges of a sampled batch and the
    epoch's step count (and the nodes of each hop, seeds first, where the sampler counts
    them). The steps run inside ``training.allocation.large_blocks_reused`` as
    in ``minibatch_epoch``. ``validate``: then one validation as the epoch loop runs it
    (``Validator`` of the split; its whole-graph ``encode``, the click AUC and the ranking
    timed apart), the seconds it adds to each step of an epoch that validates once."""
    from training import loop, minibatch
    from training.dataset import build_graph_data
    from training.device import seed_everything
    from training.models import build_model
    from training.models.dpgcn import DPGCN
    from training.optim import optimizer_for

    config = base.replace({"optim.batching": "minibatch", "optim.epochs": 1, "optim.patience": 0})
    t_setup = time.perf_counter()
    split = split_for(load_export(export), config)
    seed_everything(config.seed)
    device = torch.device("cpu")
    data = build_graph_data(split, device, config.model.history_len)
    model = build_model(config.model.name, data, config).to(device)
    optimizer = optimizer_for(model, config, minibatch=True)
    if fanout_per is not None:
        config = config.replace({"optim.fanout_per": fanout_per})
    loader = minibatch.train_loader(split, config, loop.negative_pool(model, split))
    setup_s = time.perf_counter() - t_setup
    edge_type = loader.input_data.input_type
    names = ("sample", "gather", "propagate", "loss", "backward", "step")
    phases = dict.fromkeys(names, 0.0)
    marks: dict[str, float] = {}
    gcn = cast(DPGCN, model).gcn
    hooks = [
        gcn.register_forward_pre_hook(lambda *_: marks.__setitem__("gcn0", time.perf_counter())),
        gcn.register_forward_hook(lambda *_: marks.__setitem__("gcn1", time.perf_counter())),
    ]
    nodes = edges = 0
    per_step: list[float] = []
    per_hop: dict[int, int] = {}
    model.train()
    it = iter(loader)
    reused = getattr(minibatch, "large_blocks_reused", contextlib.nullcontext)
    with reused():  # as minibatch_epoch runs its steps (where the tree has it)
        for k in range(warmup + steps):
            t0 = time.perf_counter()
            batch = next(it)
            t1 = time.perf_counter()
            loss, _ = minibatch.minibatch_loss(cast(DPGCN, model), batch, edge_type)
            t2 = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            t3 = time.perf_counter()
            optimizer.step()
            t4 = time.perf_counter()
            if k >= warmup:
                g0, g1 = marks["gcn0"], marks["gcn1"]
                spans = (t1 - t0, g0 - t1, g1 - g0, t2 - g1, t3 - t2, t4 - t3)
                for name, secs in zip(names, spans, strict=True):
                    phases[name] += secs
                per_step.append(t4 - t0)
                nodes += sum(int(batch[t].num_nodes) for t in batch.node_types)
                edges += sum(int(batch[et].edge_index.shape[1]) for et in batch.edge_types)
                for t in batch.node_types:  # seeds, then each hop's new nodes
                    for hop, n in enumerate(getattr(batch[t], "num_sampled_nodes", None) or []):
                        per_hop[hop] = per_hop.get(hop, 0) + int(n)
    for h in hooks:
        h.remove()
    total = sum(phases.values())
    epoch_steps = -(-len(split.train) // config.optim.batch_size)
    out: dict[str, Any] = {
        "export": str(export),
        "fanout_per": fanout_per,
        "train_interactions": len(split.train),
        "epoch_steps": epoch_steps,
        "graph_nodes": sum(int(n) for n in data.num_nodes.values()),
        "setup_s": setup_s,
        "timed_steps": steps,
        "s_per_step": total / steps,
        "forward_s": (phases["gather"] + phases["propagate"] + phases["loss"]) / steps,
        **{f"{name}_s": secs / steps for name, secs in phases.items()},
        "batch_nodes": nodes / steps,
        "batch_edges": edges / steps,
        "step_seconds": per_step,
        "batch_nodes_per_hop": [per_hop[h] / steps for h in sorted(per_hop)],
    }
    if validate:
        out.update(time_validation(model, split, config, device))
        out["validation_per_step_s"] = out["validation_s"] / epoch_steps
    return out


def time_validation(
    model: Any, split: Any, config: TrainConfig, device: torch.device
) -> dict[str, float]:
    """One validation of the epoch loop (``training.loop.Validator``) on ``model``: the
    validator's construction (once per fit), the whole-graph ``encode`` of the scorer, the
    click AUC and the ranking, in seconds."""
    from training.loop import Validator
    from training.protocols import ModelScorer, click_auc

    t0 = time.perf_counter()
    validate = Validator(split, config)
    t1 = time.perf_counter()
    scorer = ModelScorer(model, device)
    t2 = time.perf_counter()
    click_auc(scorer, validate.users, validate.pos, validate.neg)
    t3 = time.perf_counter()
    validate._ranked(scorer)
    t4 = time.perf_counter()
    return {
        "validator_init_s": t1 - t0,
        "val_encode_s": t2 - t1,
        "val_auc_s": t3 - t2,
        "val_rank_s": t4 - t3,
        "validation_s": t4 - t1,
        "val_pairs": float(len(validate.users)),
    }


def tile_export(export: Path, copies: int, out: Path) -> Path:
    """A larger export from ``export``: ``copies`` disjoint copies of its users, items and
    queries with their edges, sharing its terms and categories (as the scale generator keeps
    its vocabulary and category tree at every fraction), written to ``out``. A stand-in for
    a ``copies``× larger scale shop when loading one into Neo4j is too slow for a per-step
    figure: the degree distribution per copy is the original's, so what grows with it is the
    graph, not a batch's neighbourhood."""
    meta = json.loads((export / "meta.json").read_text())
    z = np.load(export / "graph.npz")
    shared = {"Term", "Category"}
    counts = {t: int(v["count"]) for t, v in meta["node_types"].items()}
    arrays: dict[str, np.ndarray] = {}
    for t, n in counts.items():
        ids = z[f"{t}.ids"]
        if t in shared:
            arrays[f"{t}.ids"] = ids
        else:
            arrays[f"{t}.ids"] = np.concatenate([np.char.add(ids, f"~{c}") for c in range(copies)])
            meta["node_types"][t]["count"] = n * copies
        if f"{t}.x" in z.files:
            arrays[f"{t}.x"] = np.concatenate([z[f"{t}.x"]] * (1 if t in shared else copies))
    for src, rel, dst in meta["edge_types"]:
        name = f"{src}__{rel}__{dst}"
        ei = z[f"{name}.edge_index"]
        if src in shared and dst in shared:
            parts = [ei]
        else:
            step = np.array(
                [[0 if src in shared else counts[src]], [0 if dst in shared else counts[dst]]]
            )
            parts = [ei + c * step for c in range(copies)]
        k = len(parts)
        arrays[f"{name}.edge_index"] = np.concatenate(parts, axis=1)
        arrays[f"{name}.time"] = np.concatenate([z[f"{name}.time"]] * k)
        arrays[f"{name}.weight"] = np.concatenate([z[f"{name}.weight"]] * k)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "graph.npz", **arrays)  # type: ignore[arg-type]
    (out / "meta.json").write_text(json.dumps(meta))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--export", type=Path, help="export directory")
    parser.add_argument("--ml100k", type=Path, help="MovieLens-100K directory (u.data, ...)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--model", default="dpgcn_no_ddpg")
    parser.add_argument("--fanout", default="10,5", help="neighbours per hop (all: --fanout=-1,-1)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--out", type=Path, help="JSON results file")
    parser.add_argument("--scaling", help="comma-separated user counts: epoch times only")
    parser.add_argument("--per-user", type=int, default=50, help="interactions per user")
    parser.add_argument("--epoch-of", nargs="+", type=Path, help="exports: one mini-batch epoch")
    parser.add_argument("--steps", type=int, default=0, help="with --epoch-of: time N steps")
    parser.add_argument("--fanout-per", choices=("type", "relation"), help="with --steps")
    parser.add_argument(
        "--tile", default="", help="with --steps: comma-separated copies of each export"
    )
    parser.add_argument("--warmup", type=int, default=2, help="with --steps: untimed steps first")
    parser.add_argument(
        "--validate", action="store_true", help="with --steps: then time one validation"
    )
    parser.add_argument("--summarize", nargs="+", type=Path, help="result files: seeds together")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="PATH=JSON",
        help="another TrainConfig value for both paths by its dotted path, e.g. "
        "model.query_loss_weight=0 (repeatable)",
    )
    args = parser.parse_args()
    if args.summarize:
        summarize(args.summarize)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    base = TrainConfig().replace(
        {
            "model.name": args.model,
            "optim.fanout": tuple(int(k) for k in args.fanout.split(",")),
            "device": "cpu",
        }
    )
    for item in args.set:
        name, _, value = item.partition("=")
        loaded = json.loads(value)
        base = base.replace({name: loaded})
    if args.epoch_of and args.steps:
        print(
            "| export | steps/epoch | s/step | sample | gather | propagate | loss | backward "
            "| step | batch nodes | batch edges | validation s (per step) |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        profiled = []
        tiles = [int(c) for c in args.tile.split(",")] if args.tile else [1]
        for export, copies in ((e, c) for e in args.epoch_of for c in tiles):
            with tempfile.TemporaryDirectory() as tmp:
                path = export if copies == 1 else tile_export(export, copies, Path(tmp))
                r = profile_steps(
                    path, base, args.steps, args.warmup, args.fanout_per, args.validate
                )
            r["export"], r["copies"] = str(export), copies
            r["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            profiled.append(r)
            export = Path(f"{export} ×{copies}") if copies > 1 else export
            val = (
                f"{r['validation_s']:.1f} ({r['validation_per_step_s']:.3f})"
                if "validation_s" in r
                else ""
            )
            print(
                f"| {export} | {r['epoch_steps']} | {r['s_per_step']:.3f} | {r['sample_s']:.3f} "
                f"| {r['gather_s']:.3f} | {r['propagate_s']:.3f} | {r['loss_s']:.3f} "
                f"| {r['backward_s']:.3f} | {r['step_s']:.3f} "
                f"| {r['batch_nodes']:.0f} | {r['batch_edges']:.0f} | {val} |",
                flush=True,
            )
        if args.out:
            out = {"threads": torch.get_num_threads(), "profiles": profiled}
            args.out.write_text(json.dumps(out))
        return
    if args.epoch_of:
        print("| export | training interactions | steps | epoch s | s/step |")
        print("|---|---|---|---|---|")
        timed = []
        for export in args.epoch_of:
            r = time_epoch(export, base)
            timed.append(r)
            print(
                f"| {export} | {r['train_interactions']} | {r['steps']} | {r['epoch_s']:.1f} "
                f"| {r['s_per_step']:.3f} |",
                flush=True,
            )
        if args.out:
            args.out.write_text(json.dumps({"threads": torch.get_num_threads(), "epochs": timed}))
        return
    if args.scaling:
        with tempfile.TemporaryDirectory() as tmp:
            print("| users | training interactions | full-batch s/epoch | mini-batch s/epoch |")
            print("|---|---|---|---|")
            rows = []
            for users in (int(u) for u in args.scaling.split(",")):
                r = run_scaling(users, args.per_user, base, Path(tmp))
                rows.append(r)
                print(
                    f"| {r['users']} | {r['train_interactions']} | {r['full']:.2f} "
                    f"| {r['minibatch']:.2f} |",
                    flush=True,
                )
        if args.out:
            args.out.write_text(json.dumps({"threads": torch.get_num_threads(), "scaling": rows}))
        return
    with tempfile.TemporaryDirectory() as tmp:
        export = args.export
        if export is None:
            if args.ml100k is None:
                parser.error("give --export or --ml100k")
            from export_factory import write_ml100k_export

            export = write_ml100k_export(args.ml100k, Path(tmp) / "ml100k")
        print(
            "| seed | batching | test NDCG@10 [95% CI] | Recall@10 | AUC | best / last epoch "
            "| train s/epoch | s/epoch with val |"
        )
        print("|---|---|---|---|---|---|---|---|", flush=True)
        results = []
        for seed in args.seeds.split(","):  # each seed printed and saved as it finishes
            r = run_seed(export, base, int(seed))
            results.append(r)
            print_seed(r)
            if args.out:
                threads = torch.get_num_threads()
                out = {"threads": threads, "set": args.set, "runs": results}
                args.out.write_text(json.dumps(out))


def print_seed(r: dict[str, Any]) -> None:
    for mode in MODES:
        m = r[mode]
        lo, hi = m["ndcg@10_ci"]
        print(
            f"| {r['seed']} | {m['batching']} | {m['ndcg@10']:.4f} [{lo:.4f}, {hi:.4f}] "
            f"| {m['recall@10']:.4f} | {m['auc']:.4f} | {m['best_epoch']} / "
            f"{m['last_epoch']} | {m['train_s_per_epoch']:.2f} | {m['epoch_s_with_val']:.2f} |"
        )
    d = r["paired_ndcg@10"]
    print(
        f"| {r['seed']} | mini − full | {d['diff']:+.4f} [{d['lo']:+.4f}, {d['hi']:+.4f}] "
        f"p={d['p']:.3f} | | | | | |",
        flush=True,
    )


if __name__ == "__main__":
    main()
