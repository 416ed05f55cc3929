"""Scale run (slow; not part of the tests): load a ``synthetic_scale.generate_scale`` shop of
``--scale`` × (1M users / 200k items) with ~``--rels-per-user`` interactions each into an
empty managed Neo4j, optionally export it, and report wall time, rate, the loader process's
peak RSS, Neo4j's peak RSS and the store size on disk.

Two loaders (``--path``):

* ``online``: ``graphstore.ingest.load_source`` into the running server (CREATE fast path);
* ``bulk``: ``dpgcn.bulk_import.bulk_load`` — CSV files from the same rows, the server stopped,
  ``neo4j-admin database import``, the server started again, the schema created after.

Full scale (1M users / 200k items / ~20M relationships)::

    .venv/bin/python bench/scale_run.py --scale 1 --path bulk

Dry run at 1/20 scale (50k users / 10k items / ~1M relationships)::

    .venv/bin/python bench/scale_run.py --scale 0.05 --path online

End to end (``--pipeline``): after the load, the product's pipeline runs on a real worker
(``dpgcn worker``, started as the worker app): export → train (``--model``, mini-batch on
the CPU, ``--epochs`` epochs) → write-back → segments → activate; then the API
(``api.main``) starts on the trained version and ``wrk`` sends the README's request
(recommendations with explanations) for random users, 5 s of warm-up and then
``--serve-seconds`` at ``--connections`` connections. ``--serve-only`` repeats just that
stage on the version a finished run activated in the same state home (``DPGCN_HOME``; give the run's
``--scale``). Each stage's wall time comes from the run record (step start and finish), its
peak RSS from one-second samples of the worker's process tree and of Neo4j within that
window; the API's time to serve (snapshot loaded) and peak RSS are measured around its start
and the wrk run. ``--json`` writes the figures. Every service this script started (Neo4j,
Redis, the worker, the API) is stopped at the end.
The shop has a planted truth (``--affinity``, the share of each user's item interactions
drawn from a favourite category: :class:`graphstore.sources.synthetic_scale.ScaleSpec`). After
a successful pipeline its oracle (``scale_oracle``) is written to the run's export directory
as ``oracle.npz`` and evaluated on the test split the train step evaluated the model on (the
run's ``train_config.json``: same protocol, seed and ranked users, the harness's
``evaluate_scorer``), giving ``oracle_ndcg@10`` and ``ndcg@10_vs_oracle`` (model / oracle).
A run at 1/16 scale, end to end::

    .venv/bin/python bench/scale_run.py --scale 0.0625 --path bulk --pipeline --epochs 1 \
        --json scale_s16.json

``--summarize A.json B.json …`` (``bench/scale_summary.py``; starts nothing) prints the runs'
stages side by side with each stage's log-log slope of wall time against relationships, and
the oracle ratios; ``--plot PATH.svg`` also writes them as a log-log figure: wall seconds
against relationships, one line per stage (a stage a run lacks has no point there) with its
fitted slope in the legend and a dashed slope-1 line through the smallest run's total, and a
panel of the worker's, Neo4j's and the API's peak RSS::

    .venv/bin/python bench/scale_run.py --summarize scale_s*.json --plot docs/images/scale-runs.svg

Uses the benchmarks' state home and ports unless the environment names others, and wipes
that graph.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import benchenv  # noqa: F401  (sets the benchmarks' own state home and ports)
from scale_summary import oracle_line, summarize


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().strip()


def tree_rss_kib(root: int) -> int:
    """Resident memory (VmRSS) of ``root`` and its descendants, in KiB."""
    parent: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parent[int(entry.name)] = int(stat[1])
    tree, grew = {root}, True
    while grew:
        more = {p for p, pp in parent.items() if pp in tree} - tree
        tree |= more
        grew = bool(more)
    total = 0
    for pid in tree:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


class RssWatch:
    """Samples a process's resident memory (VmRSS) every ``every`` seconds; the pid is read
    from a pid file each time (the server may be restarted under it), or given. ``tree``
    sums the process and its descendants (a supervisor and the worker under it). Keeps the
    samples (``time.time()``, KiB) for peaks within a time window."""

    def __init__(self, pid: Path | int, every: float = 1.0, tree: bool = False) -> None:
        self.pid = pid
        self.every = every
        self.tree = tree
        self.peak_kib = 0
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        pid = self.pid if isinstance(self.pid, int) else int(self.pid.read_text().strip())
        if self.tree:
            return tree_rss_kib(pid)
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                kib = self._sample()
                self.samples.append((time.time(), kib))
                self.peak_kib = max(self.peak_kib, kib)
            except (OSError, ValueError):
                pass
            self._stop.wait(self.every)

    def peak_mib(self, start: float, end: float) -> float:
        """Peak of the samples taken between ``start`` and ``end`` (``time.time()``)."""
        inside = [k for t, k in self.samples if start - self.every <= t <= end + self.every]
        return max(inside, default=0) / 1024

    def __enter__(self) -> RssWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


#: The pipeline's steps, as the run record names them.
STEPS = ("export", "train", "write_back", "segments", "activate")


def oracle_ratio(spec: Any, run_id: str, model_ndcg: float | None) -> dict[str, Any]:
    """Write the shop's planted oracle into the run's export directory and evaluate it on the
    train step's own test split (its saved TrainConfig: protocol, seed, ``eval.max_users``),
    with the harness's metrics; the model's test NDCG@10 over the oracle's."""
    from graphstore.export_format import write_oracle
    from graphstore.sources.synthetic_scale import scale_oracle
    from training.config import TrainConfig
    from training.data import load_export
    from training.loop import split_for
    from training.oracle import load_oracle
    from training.train import evaluate_scorer
    from workers.context import paths

    started = time.perf_counter()
    p = paths(run_id)
    write_oracle(p["export"], *scale_oracle(spec))
    config = TrainConfig.from_json((p["model"] / "train_config.json").read_text())
    graph = load_export(p["export"])
    split = split_for(graph, config)
    scorer = load_oracle(p["export"], graph)
    if scorer is None:
        raise RuntimeError(f"no oracle.npz in {p['export']} after writing it")
    metrics = evaluate_scorer(scorer, split, config, "test", logits=False)
    oracle = float(metrics["ndcg@10"])
    return {
        "affinity": spec.affinity,
        "oracle_ndcg@10": oracle,
        "ndcg@10_vs_oracle": None if model_ndcg is None or oracle <= 0 else model_ndcg / oracle,
        "oracle_ranked_users": metrics.get("ranked_users"),
        "oracle_hr@10": metrics.get("hr@10"),
        "oracle_seconds": time.perf_counter() - started,
    }


def run_pipeline(
    args: argparse.Namespace, settings: Any, neo4j_pid: Path, spec: Any
) -> dict[str, Any]:
    """The product's pipeline on a real worker, then the API serving its version."""
    from dpgcn import apps
    from workers import pipeline, runs

    apps.start_app(settings, "worker")
    config = {
        "model.name": args.model,
        "optim.batching": "minibatch",
        "optim.epochs": args.epochs,
        "device": "cpu",
    }
    run_id = runs.new_run_id()
    out: dict[str, Any] = {"run_id": run_id, "config": config, "stages": {}}
    with (
        RssWatch(apps.app_pid_file(settings, "worker"), tree=True) as worker,
        RssWatch(neo4j_pid) as neo4j,
    ):
        started = time.perf_counter()
        pipeline.submit_pipeline(run_id, config)
        record: dict[str, Any] = {}
        while time.perf_counter() - started < args.pipeline_timeout:
            record = runs.get(run_id) or {}
            if record.get("state") in ("SUCCESS", "FAILURE"):
                break
            time.sleep(1.0)
        out["pipeline_s"] = time.perf_counter() - started
    out["state"] = record.get("state", "TIMEOUT")
    if out["state"] != "SUCCESS":
        out["error"] = record.get("error", f"not done after {args.pipeline_timeout:.0f} s")
        return out
    for step in STEPS:
        t0, t1 = record.get(f"{step}_started_at"), record.get(f"{step}_finished_at")
        if t0 is None or t1 is None:
            continue
        out["stages"][step] = {
            "seconds": float(t1) - float(t0),
            "worker_peak_rss_mib": worker.peak_mib(float(t0), float(t1)),
            "neo4j_peak_rss_mib": neo4j.peak_mib(float(t0), float(t1)),
        }
    metrics = record.get("metrics") or {}
    out["train_metrics"] = {
        k: metrics[k]
        for k in ("batching", "best_epoch", "last_epoch", "train_seconds", "test_ndcg@10")
        if k in metrics
    }
    apps.stop_app(settings, "worker")
    out["serve"] = serve(args, settings)
    ndcg = metrics.get("test_ndcg@10")
    try:  # after the timed stages: the figures above stay those of the product alone
        out.update(oracle_ratio(spec, run_id, None if ndcg is None else float(ndcg)))
    except Exception as e:  # the stage figures are still worth writing
        out["oracle_error"] = f"{type(e).__name__}: {e}"
    return out


def serve(args: argparse.Namespace, settings: Any) -> dict[str, Any]:
    """The API on the activated version: time until every answer comes from its snapshot,
    then wrk on random users' recommendations."""
    import bench_api

    key = bench_api.create_key()
    env = {**os.environ, "DPGCN_LOG_LEVEL": "WARNING"}
    port = settings.api.port + 50
    t0 = time.perf_counter()
    proc = bench_api.start_server("api.main:app", port, env, False)
    ready_s = time.perf_counter() - t0
    path = "/v1/users/u%d/recommendations?k=10"  # the README's request (explanations on)
    users = round(1_000_000 * args.scale)
    try:
        with RssWatch(proc.pid, tree=True) as api:
            result = bench_api.run_wrk(
                f"http://127.0.0.1:{port}",
                path,
                key,
                users,
                args.serve_seconds,
                args.connections,
                proc.pid,
            )
    finally:
        bench_api.stop_server(proc)
    result.pop("raw", None)
    return {"ready_s": ready_s, "api_peak_rss_mib": api.peak_kib / 1024, **result}


def print_pipeline(result: dict[str, Any]) -> None:
    if result["state"] != "SUCCESS":
        print(f"pipeline {result['run_id']} {result['state']}: {result.get('error')}", flush=True)
        return
    print(f"pipeline {result['run_id']} ({result['config']}): {result['pipeline_s']:.0f} s")
    print("| stage | wall s | worker peak RSS MiB | Neo4j peak RSS MiB |")
    print("|---|---|---|---|")
    for step, r in result["stages"].items():
        print(
            f"| {step} | {r['seconds']:.1f} | {r['worker_peak_rss_mib']:,.0f} "
            f"| {r['neo4j_peak_rss_mib']:,.0f} |"
        )
    s = result["serve"]
    print(
        f"| serve (API ready) | {s['ready_s']:.1f} | API peak RSS {s['api_peak_rss_mib']:,.0f} | |"
    )
    print(
        f"training: {result['train_metrics']}; wrk: {s['rps']:.1f} req/s, p50 {s['p50_ms']:.1f} "
        f"ms, p99 {s['p99_ms']:.1f} ms, errors {s['errors']}",
        flush=True,
    )
    print(oracle_line(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=0.05)
    parser.add_argument("--rels-per-user", type=float, default=20.0)
    parser.add_argument("--batch-size", type=int, default=10000)
    parser.add_argument("--path", choices=("online", "bulk"), default="online")
    parser.add_argument("--no-export", action="store_true")
    parser.add_argument("--pipeline", action="store_true", help="export, train, ..., serve")
    parser.add_argument("--model", default="dpgcn")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument(
        "--affinity",
        type=float,
        default=0.5,
        help="planted share of each user's item interactions from a favourite category",
    )
    parser.add_argument("--pipeline-timeout", type=float, default=3600.0)
    parser.add_argument(
        "--serve-only",
        action="store_true",
        help="no load or pipeline: the API and wrk on the state home's active version",
    )
    parser.add_argument("--serve-seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--summarize", nargs="+", type=Path, help="--json files: table, slopes")
    parser.add_argument("--plot", type=Path, help="with --summarize: the log-log figure (SVG)")
    args = parser.parse_args()
    if args.plot and not args.summarize:
        parser.error("--plot needs --summarize")
    if args.summarize:
        summarize(args.summarize, args.plot)
        return

    from dpgcn.settings import get_settings

    print(f"load average at start: {loadavg()}", flush=True)
    subprocess.run([sys.executable, "-m", "dpgcn.cli", "services", "up"], check=True)
    settings = get_settings()
    try:
        figures = serve_only(args, settings) if args.serve_only else load_and_run(args, settings)
    finally:
        subprocess.run([sys.executable, "-m", "dpgcn.cli", "services", "down"], check=False)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


def serve_only(args: argparse.Namespace, settings: Any) -> dict[str, Any]:
    """The serve stage alone, on the version a finished ``--pipeline`` run activated in this
    state home (``--scale`` names the shop, so the users requested exist)."""
    s = serve(args, settings)
    print(
        f"serve only (scale {args.scale}): API ready in {s['ready_s']:.1f} s, peak RSS "
        f"{s['api_peak_rss_mib']:,.0f} MiB; wrk {args.serve_seconds} s, c={args.connections}: "
        f"{s['rps']:.1f} req/s, p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms, "
        f"errors {s['errors']}",
        flush=True,
    )
    return {"scale": args.scale, "serve_only": s, "load_average_end": loadavg()}


def load_and_run(args: argparse.Namespace, settings: Any) -> dict[str, Any]:
    from dpgcn import bulk_import, services
    from graphstore import ingest
    from graphstore.driver import connect, delete_all, execute
    from graphstore.export import export_subgraph
    from graphstore.sources import synthetic_scale

    conn = services.neo4j_connection(settings)
    spec = synthetic_scale.ScaleSpec(
        users=round(1_000_000 * args.scale),
        items=round(200_000 * args.scale),
        rels_per_user=args.rels_per_user,
        seed=7,
        affinity=args.affinity,
    )
    print(
        f"scale {args.scale}: {spec.users:,} users, {spec.items:,} items, affinity {spec.affinity}",
        flush=True,
    )
    if args.path == "online":  # the bulk import replaces the store anyway
        driver = connect(conn.uri, conn.user, conn.password)
        delete_all(driver)
        driver.close()
    server = services.neo4j_spec(settings)
    store = Path(os.environ["DPGCN_HOME"]) / "neo4j" / "data"
    started = time.perf_counter()
    with RssWatch(server.pid_file) as neo4j_rss:
        if args.path == "online":
            driver = connect(conn.uri, conn.user, conn.password)
            summary = ingest.load_source(
                driver, synthetic_scale.generate_scale(spec), batch_size=args.batch_size
            )
            detail = "online loader, CREATE fast path"
        else:
            done = bulk_import.bulk_load(
                settings, synthetic_scale.generate_scale(spec), replace=True
            )
            summary = done.summary
            driver = connect(conn.uri, conn.user, conn.password)
            detail = (
                f"bulk: files {done.files_s:.0f} s, stop {done.stop_s:.0f} s, neo4j-admin import "
                f"{done.import_s:.0f} s (importer peak RSS {done.import_peak_rss_mib:,.0f} MiB), "
                f"start {done.start_s:.0f} s, schema {done.schema_s:.0f} s"
            )
        seconds = time.perf_counter() - started
    figures: dict[str, Any] = {
        "scale": args.scale,
        "affinity": spec.affinity,
        "users": spec.users,
        "items": spec.items,
        "nodes": summary.nodes,
        "relationships": summary.relationships,
        "load": {"seconds": seconds, "neo4j_peak_rss_mib": neo4j_rss.peak_kib / 1024},
        "load_average_start": loadavg(),
    }
    rels = summary.relationships
    in_graph = int(execute(driver, "export/count_relationships", read=True)[0]["n"])
    print(
        f"load ({detail}): {summary.nodes:,} nodes + {rels:,} relationships in {seconds:.0f} s "
        f"-> {rels / seconds:,.0f} rel/s; in graph: {in_graph:,}; loader peak RSS "
        f"{peak_rss_mib():,.0f} MiB; Neo4j server peak RSS (sampled each second) "
        f"{neo4j_rss.peak_kib / 1024:,.0f} MiB; load average {loadavg()}",
        flush=True,
    )
    print(
        f"Neo4j store: databases/neo4j {dir_size(store / 'databases' / 'neo4j') / 2**30:.2f} "
        f"GiB, transactions/neo4j {dir_size(store / 'transactions' / 'neo4j') / 2**30:.2f} GiB",
        flush=True,
    )
    if args.pipeline:
        driver.close()
        figures["pipeline"] = run_pipeline(args, settings, server.pid_file, spec)
        print_pipeline(figures["pipeline"])
    elif not args.no_export:
        out = Path(tempfile.mkdtemp(prefix="scale-export-")) / "graph"
        result = export_subgraph(driver, out)
        print(
            f"export: {result['edges']:,} edges in {result['seconds']:.0f} s -> "
            f"{result['edges'] / result['seconds']:,.0f} edges/s; files "
            f"{dir_size(out) / 2**20:,.0f} MiB; peak RSS now {peak_rss_mib():,.0f} MiB"
        )
    print(f"load average at end: {loadavg()}")
    figures["load_average_end"] = loadavg()
    driver.close()
    return figures


if __name__ == "__main__":
    main()
