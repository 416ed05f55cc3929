"""The ``dpgcn`` command line. User-facing output is printed here and nowhere else."""

from __future__ import annotations

import logging
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dpgcn import services
from dpgcn.cli_apikey import apikey_app
from dpgcn.cli_common import fail, graph_driver
from dpgcn.cli_export import export
from dpgcn.cli_privacy import privacy_app
from dpgcn.cli_segments import segments_app
from dpgcn.logs import configure_logging
from dpgcn.settings import get_settings
from graphstore.records import GraphSource

if TYPE_CHECKING:
    from graphstore.ingest import LoadSummary

app = typer.Typer(
    help="DP-GCN graph recommender on Neo4j.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
services_app = typer.Typer(
    help="Manage Neo4j and Redis (local, or external via env).", no_args_is_help=True
)
load_app = typer.Typer(help="Load data into the graph.", no_args_is_help=True)
app.add_typer(services_app, name="services")
app.add_typer(load_app, name="load")
app.add_typer(apikey_app, name="apikey")
app.add_typer(segments_app, name="segments")
app.add_typer(privacy_app, name="privacy")
app.command("export")(export)

logger = logging.getLogger(__name__)


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    configure_logging("DEBUG" if verbose else get_settings().log_level)


# ------------------------------------------------------------------------------------ services


@services_app.command("up")
def services_up(
    with_app: Annotated[
        bool, typer.Option("--app", help="Also run a worker and the API in the background.")
    ] = False,
) -> None:
    """Start the managed Neo4j and Redis (no-op when running); wait until both answer."""
    settings = get_settings()
    try:
        services.up(settings)
        if with_app:
            for name in services.APP_PROCESSES:
                services.start_app(settings, name)
    except services.ServiceError as e:
        fail(str(e))
    _print_status(services.status(settings, wait=10.0) + services.app_status(settings))


@services_app.command("down")
def services_down() -> None:
    """Stop the managed Neo4j and Redis; data stays in DPGCN_HOME."""
    stopped = services.down(get_settings())
    typer.echo("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@services_app.command("status")
def services_status(
    wait: Annotated[float, typer.Option(help="Seconds to wait for each to answer.")] = 5.0,
) -> None:
    """Report each service, its address, Browser URL and where the credentials are."""
    report = services.status(get_settings(), wait=wait)
    _print_status(report + services.app_status(get_settings()))
    if not all(s.healthy for s in report):
        raise typer.Exit(1)


def _print_status(report: list[services.ServiceStatus]) -> None:
    settings = get_settings()
    for s in report:
        mark = "healthy" if s.healthy else "DOWN"
        kind = "managed" if s.managed else "external"
        line = f"{s.name:6} {mark:8} ({kind}) {s.detail}"
        if s.pid:
            line += f" pid={s.pid}"
        if s.log and not s.healthy:
            line += f" log={s.log}"
        typer.echo(line)
    if settings.neo4j.managed:
        spec = services.neo4j_spec(settings)
        typer.echo(f"neo4j  user=neo4j password in {spec.password_file} (or `dpgcn services env`)")


@services_app.command("env")
def services_env() -> None:
    """Print `export` lines for NEO4J_URI/USER/PASSWORD and REDIS_URL."""
    settings = get_settings()
    try:
        conn = services.neo4j_connection(settings)
        url = services.redis_url(settings)
    except services.ServiceError as e:
        fail(str(e))
    for key, value in (
        ("NEO4J_URI", conn.uri),
        ("NEO4J_USER", conn.user),
        ("NEO4J_PASSWORD", conn.password),
        ("NEO4J_DATABASE", conn.database),
        ("REDIS_URL", url),
    ):
        typer.echo(f"export {key}={shlex.quote(value)}")


_driver = graph_driver


# ---------------------------------------------------------------------------------------- load

_BULK_HELP = (
    "Initial load with neo4j-admin database import (offline: the managed Neo4j is stopped "
    "and restarted). Only into an empty, locally managed database (with --replace: replaces it)."
)


@load_app.command("synthetic")
def load_synthetic(
    users: Annotated[int, typer.Option(min=1, help="Number of users.")] = 2000,
    items: Annotated[int, typer.Option(min=1, help="Number of items.")] = 500,
    segments: Annotated[int, typer.Option(min=1, help="Planted user segments.")] = 6,
    events_per_user: Annotated[float, typer.Option(min=1, help="Mean events per user.")] = 20.0,
    drift: Annotated[float, typer.Option(min=0, max=1, help="Fraction of drifting users.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same graph).")] = 0,
    replace: Annotated[bool, typer.Option(help="Delete the whole graph first.")] = False,
    bulk: Annotated[bool, typer.Option(help=_BULK_HELP)] = False,
) -> None:
    """Generate the synthetic shop (planted segments, Zipf items, queries) and load it."""
    from graphstore import synthetic

    spec = synthetic.SyntheticSpec(
        users=users,
        items=items,
        n_segments=segments,
        events_per_user=events_per_user,
        drift_fraction=drift,
        seed=seed,
    )
    source, _truth = synthetic.generate(spec)
    _ingest(source, replace, bulk)


def _ingest(source: GraphSource, replace: bool, bulk: bool = False) -> None:
    from tqdm import tqdm

    if bulk:
        _bulk_ingest(source, replace)
        return

    from graphstore import ingest
    from graphstore.driver import delete_all
    from graphstore.errors import GraphStoreError

    db = get_settings().neo4j.database
    with _driver() as driver:
        try:
            if replace:
                delete_all(driver, db)
            with tqdm(desc="loading", unit="rows") as bar:
                summary = ingest.load_source(
                    driver, source, database=db, progress=lambda part, n: bar.update(n)
                )
        except GraphStoreError as e:
            fail(str(e))
    typer.echo(f"loaded {summary.source}")
    _echo_summary(summary)


def _echo_summary(summary: LoadSummary) -> None:
    """What a load wrote, left out and rejected (online and bulk loads alike)."""
    for part, n in summary.written.items():
        typer.echo(f"  {part:16} {n:>9}")
    if summary.erased:
        typer.echo(f"  erased users left out: {summary.erased}")
    if summary.unmatched:
        typer.echo(f"  rows whose endpoints were missing: {summary.unmatched}")
    if summary.rejected:
        typer.echo(f"  {len(summary.rejected)} rows rejected, e.g. {summary.rejected[0]}")


def _bulk_ingest(source: GraphSource, replace: bool) -> None:
    from tqdm import tqdm

    settings = get_settings()
    try:
        with tqdm(desc="writing import files", unit="rows") as bar:
            done = services.bulk_load(
                settings, source, replace=replace, progress=lambda part, n: bar.update(n)
            )
    except services.ServiceError as e:
        fail(str(e))
    summary = done.summary
    typer.echo(
        f"bulk-loaded {summary.source} with neo4j-admin database import: files "
        f"{done.files_s:.1f} s, import {done.import_s:.1f} s, restart "
        f"{done.stop_s + done.start_s:.1f} s, schema {done.schema_s:.1f} s"
    )
    _echo_summary(summary)


def _register_loader(name: str, doc: str) -> None:
    def command(
        path: Annotated[Path, typer.Option(exists=True, help="The dataset's folder or file.")],
        on_error: Annotated[
            str, typer.Option(help="raise: refuse the load on a bad row; reject: skip bad rows.")
        ] = "raise",
        replace: Annotated[bool, typer.Option(help="Delete the whole graph first.")] = False,
        bulk: Annotated[bool, typer.Option(help=_BULK_HELP)] = False,
    ) -> None:
        from graphstore.errors import GraphStoreError
        from graphstore.loaders import load_dataset

        try:
            source = load_dataset(name, path, on_error=on_error)
        except GraphStoreError as e:
            fail(str(e))
        _ingest(source, replace, bulk)

    command.__doc__ = doc
    load_app.command(name)(command)


for _name, _doc in (
    ("generic", "Load the generic CSV/Parquet format (users, items, events); see docs/loaders.md."),
    ("movielens", "Load MovieLens-100K (ratings, user demographics, genres)."),
    ("bestbuy", "Load the Best Buy search → click log."),
    ("jdsearch", "Load the JD search sample (term-id queries, click/cart/purchase)."),
    ("amazon", "Load Amazon reviews + metadata JSON lines (queries from category paths)."),
):
    _register_loader(_name, _doc)


# ------------------------------------------------------------------------------------ pipeline


@app.command("train")
def train(
    model: Annotated[str, typer.Option(help="Model to train (dpgcn or a baseline).")] = "dpgcn",
    epochs: Annotated[int | None, typer.Option(min=1, help="Training epochs.")] = None,
    dim: Annotated[int | None, typer.Option(min=2, help="Embedding dimension.")] = None,
    wait: Annotated[bool, typer.Option(help="Follow the run with a progress bar.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 3600.0,
) -> None:
    """Queue the export → train → write-back → activate pipeline on the Celery workers."""
    from workers import pipeline, runs

    config: dict[str, object] = {"model": model}
    if epochs is not None:
        config["epochs"] = epochs
    if dim is not None:
        config["dim"] = dim
    run_id = runs.new_run_id()
    pipeline.submit_pipeline(run_id, config)
    typer.echo(f"run {run_id} queued")
    if wait:
        record = _follow(run_id, timeout)
        if record.get("state") != "SUCCESS":
            fail(f"run {run_id} ended {record.get('state')}: {record.get('error', '')}")
        typer.echo(f"run {run_id} done: model version {run_id} is active")


def _follow(run_id: str, timeout: float) -> dict[str, object]:
    import time

    from tqdm import tqdm

    from workers import runs

    deadline = time.monotonic() + timeout
    with tqdm(total=None, desc="queued", unit="epoch") as bar:
        while time.monotonic() < deadline:
            record = runs.get(run_id) or {}
            state = record.get("state")
            progress = record.get("progress") or {}
            if isinstance(progress, dict) and progress.get("epochs"):
                bar.total = int(progress["epochs"])
                bar.n = int(progress.get("epoch", 0))
                bar.set_postfix(loss=progress.get("loss"), val_auc=progress.get("val_auc"))
            bar.set_description(f"{state} {record.get('step', '')}".strip())
            bar.refresh()
            if state in ("SUCCESS", "FAILURE"):
                return record
            time.sleep(1.0)
    fail(f"run {run_id} did not finish within {timeout:.0f}s")


@app.command("jobs")
def jobs(limit: Annotated[int, typer.Option(min=1)] = 20) -> None:
    """List pipeline runs with state, step and metrics."""
    from workers import runs

    for r in runs.list_runs(limit):
        metrics = r.get("metrics") or {}
        shown = ", ".join(
            f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
            for k, v in list(metrics.items())[:4]
        )
        extra = "".join(f"  {key}={r[key]}" for key in ("retries", "recoveries") if r.get(key))
        typer.echo(f"{r['run_id']}  {r.get('state', ''):8} {r.get('step', ''):10} {shown}{extra}")


@app.command("worker")
def worker(
    queues: Annotated[str, typer.Option(help="Comma-separated queues.")] = "graph,training",
    concurrency: Annotated[int, typer.Option(min=1)] = 1,
    pool: Annotated[str, typer.Option(help="Celery pool (solo is CUDA-safe).")] = "solo",
    name: Annotated[str | None, typer.Option(help="Worker node name.")] = None,
) -> None:
    """Run a Celery worker (training queue: solo pool, one task at a time)."""
    from workers.app import app as celery_app

    argv = [
        "worker",
        f"--queues={queues}",
        f"--pool={pool}",
        f"--concurrency={concurrency}",
        "--loglevel=INFO",
        "--without-gossip",
        "--without-mingle",
    ]
    if name:
        argv.append(f"--hostname={name}")
    celery_app.worker_main(argv)


@app.command("beat")
def beat() -> None:
    """Run celery beat: periodic retraining (DPGCN_RETRAIN_EVERY_S) and online policy
    updates from the feedback stream (DPGCN_POLICY_UPDATE_EVERY_S). Run exactly one."""
    from workers.app import app as celery_app

    schedule = get_settings().home / "celerybeat-schedule"
    celery_app.start(["beat", "--loglevel=INFO", f"--schedule={schedule}"])


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Server processes.")] = 1,
) -> None:
    """Run the recommendation API (uvicorn; TCP_NODELAY on every connection and one listening
    socket per worker process, see api/server.py)."""
    from api.server import serve as run_api

    settings = get_settings()
    run_api(
        "api.main:app",
        host=host or settings.api.host,
        port=port or settings.api.port,
        workers=workers,
        log_level=settings.log_level.lower(),
    )


#: Where `dpgcn evaluate` looks for a dataset when --path is not given.
DATASET_DIRS = {
    "movielens": "ml-100k",
    "bestbuy": "bestbuy-xbox-small",
    "jdsearch": "jdsearch-sample",
    "amazon": "amazon-electronics-din-sample",
}


def _write_oracle(truth: object, export_dir: Path) -> Path:
    """``oracle.npz`` of a synthetic export: the planted preference model as a dot product
    (``training/oracle.py`` documents the keys)."""
    import numpy as np

    from graphstore.synthetic import SyntheticTruth

    assert isinstance(truth, SyntheticTruth)
    n_users, n_items = len(truth.user_ids), len(truth.item_ids)
    user = np.concatenate([truth.user_latent, np.ones((n_users, 1))], axis=1)
    item = np.concatenate(
        [truth.item_latent, (truth.beta * truth.log_popularity).reshape(n_items, 1)], axis=1
    )
    path = export_dir / "oracle.npz"
    arrays = {
        "User.ids": np.asarray(truth.user_ids, dtype=str),
        "User.vector": user.astype(np.float32),
        "Item.ids": np.asarray(truth.item_ids, dtype=str),
        "Item.vector": item.astype(np.float32),
    }
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


def _write_query_task(test_file: Path, export_dir: Path) -> dict[str, int]:
    """``query_task.npz`` of an export: the rows of a labelled ``user,sku,…,query`` test file
    (not exported into the graph) as export rows, -1 where unknown (``training/query_task.py``
    documents the keys). Returns coverage counts."""
    import csv

    import numpy as np

    from graphstore.errors import InputError
    from graphstore.text import normalize_query

    with np.load(export_dir / "graph.npz", allow_pickle=False) as npz:
        rows_of = {
            label: {str(k): n for n, k in enumerate(npz[f"{label}.ids"].tolist())}
            if f"{label}.ids" in npz.files
            else {}
            for label in ("User", "Item", "Query", "Term")
        }
    users, queries, items, indptr, terms = [], [], [], [0], []
    with test_file.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"user", "sku", "query"} - set(reader.fieldnames or ())
        if missing:
            raise InputError(str(test_file), 1, f"missing column(s) {', '.join(sorted(missing))}")
        for row in reader:
            qid = normalize_query(row["query"] or "")
            users.append(rows_of["User"].get(row["user"].strip(), -1))
            queries.append(rows_of["Query"].get(qid, -1) if qid else -1)
            items.append(rows_of["Item"].get(row["sku"].strip(), -1))
            known = [rows_of["Term"][t] for t in qid.split() if t in rows_of["Term"]]
            terms.extend(known)
            indptr.append(len(terms))
    arrays = {
        "test.user": np.asarray(users, dtype=np.int64),
        "test.query": np.asarray(queries, dtype=np.int64),
        "test.term_indptr": np.asarray(indptr, dtype=np.int64),
        "test.term_index": np.asarray(terms, dtype=np.int64),
        "test.item": np.asarray(items, dtype=np.int64),
    }
    np.savez(export_dir / "query_task.npz", **arrays)  # type: ignore[arg-type]
    return {
        "rows": len(users),
        "known_user": int((arrays["test.user"] >= 0).sum()),
        "known_query": int((arrays["test.query"] >= 0).sum()),
        "known_item": int((arrays["test.item"] >= 0).sum()),
    }


#: The labelled test file of a dataset whose rows form the query-conditioned task (MAP@5).
QUERY_TASK_FILES = {"bestbuy": "labelled_split/test.csv"}


@app.command("evaluate")
def evaluate(
    dataset: Annotated[
        str, typer.Option(help="synthetic, movielens, bestbuy, jdsearch, amazon or generic.")
    ] = "synthetic",
    path: Annotated[
        Path | None, typer.Option(help="Dataset folder (default: $DPGCN_DATA_DIR/<dataset>).")
    ] = None,
    models: Annotated[
        str | None, typer.Option(help="Comma-separated models (default: all).")
    ] = None,
    seeds: Annotated[int, typer.Option(min=1, help="Seeds 0..N-1 (mean ± std).")] = 3,
    epochs: Annotated[int | None, typer.Option(min=1, help="Epochs per model.")] = None,
    out: Annotated[Path, typer.Option(help="Reports root.")] = Path("reports"),
    users: Annotated[int, typer.Option(min=10, help="Synthetic: users.")] = 2000,
    items: Annotated[int, typer.Option(min=10, help="Synthetic: items.")] = 500,
    events_per_user: Annotated[
        float, typer.Option(min=1.0, help="Synthetic: mean events per user.")
    ] = 20.0,
    data_seed: Annotated[int, typer.Option(help="Synthetic: generator seed.")] = 0,
    export_dir: Annotated[
        Path | None,
        typer.Option(help="Where to write the export (default: <artifacts>/evaluate/<dataset>)."),
    ] = None,
    export_only: Annotated[
        bool, typer.Option(help="Write the export (and oracle / query task) and stop.")
    ] = False,
) -> None:
    """Train and compare DP-GCN and the baselines on a dataset; writes reports/<dataset>/.

    Synthetic exports get an ``oracle.npz`` (the planted preference model, evaluated as the
    ``oracle`` row); Best Buy gets a ``query_task.npz`` from its labelled test file (MAP@5)."""
    import os

    from tqdm import tqdm

    from graphstore.errors import GraphStoreError
    from graphstore.export import export_source
    from training.config import TrainConfig
    from training.errors import TrainingError
    from training.evaluate import evaluate as run_evaluation

    settings = get_settings()
    target = export_dir or settings.artifacts_dir / "evaluate" / dataset / "export"
    try:
        if dataset == "synthetic":
            from graphstore import synthetic

            spec = synthetic.SyntheticSpec(
                users=users, items=items, events_per_user=events_per_user, seed=data_seed
            )
            source, truth = synthetic.generate(spec)
            export_source(source, target)
            _write_oracle(truth, target)
        else:
            from graphstore.loaders import load_dataset

            if path is None:
                root = Path(os.environ.get("DPGCN_DATA_DIR", "../shared/data"))
                path = root / DATASET_DIRS.get(dataset, dataset)
            source = load_dataset(dataset, path)
            export_source(source, target)
            task_file = path / QUERY_TASK_FILES.get(dataset, "-")
            if dataset in QUERY_TASK_FILES and task_file.is_file():
                counts = _write_query_task(task_file, target)
                typer.echo(f"query task from {task_file}: {counts}")
        if export_only:
            typer.echo(f"export written to {target}")
            return
        config = TrainConfig() if epochs is None else TrainConfig(epochs=epochs)
        names = models.split(",") if models else None
        with tqdm(desc=f"evaluate {dataset}", unit="epoch") as bar:

            def progress(event: dict[str, object]) -> None:
                bar.set_description(f"seed {event.get('seed')} {event.get('model')}")
                if "loss" in event:
                    bar.set_postfix(loss=event.get("loss"), val_auc=event.get("val_auc"))
                bar.update(0 if event.get("done") else 1)

            run_evaluation(target, out / dataset, names, tuple(range(seeds)), progress, config)
    except (GraphStoreError, TrainingError, KeyError, OSError) as e:
        fail(str(e))
    typer.echo(f"reports written to {out / dataset}: results.md, results.json, figures")


@app.command("demo")
def demo(
    users: Annotated[int, typer.Option(min=10)] = 2000,
    items: Annotated[int, typer.Option(min=10)] = 500,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for training.")] = 1800.0,
) -> None:
    """Everything: services, worker and API up, synthetic graph loaded, trained, served."""
    import json
    import time
    import urllib.request

    settings = get_settings()
    services_up(with_app=True)
    load_synthetic(
        users=users, items=items, segments=6, events_per_user=20.0, drift=0.0, seed=0, replace=False
    )
    train(model="dpgcn", epochs=None, dim=None, wait=True, timeout=timeout)
    base = f"http://{settings.api.host}:{settings.api.port}"
    from workers import runs

    version = runs.list_runs(1)[0]["run_id"]
    key_file = _demo_api_key(settings.secrets_dir)
    user = "u0"
    url = f"{base}/v1/users/{user}/recommendations?k=10"
    request = urllib.request.Request(url, headers={"X-API-Key": key_file.read_text().strip()})
    # The API keeps answering from the previous version's snapshot until the new one is
    # loaded (it never mixes two), so wait until the answers come from the new version.
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                body = json.load(resp)
            if body.get("model_version") == version:
                break
        except OSError as e:  # not answering yet (URLError, timeouts are OSErrors)
            logger.debug("API: %s", e)
        if time.monotonic() > deadline:
            fail("the API did not serve the new model version within 120s")
        time.sleep(1)
    typer.echo(
        f"\nrecommendations for {user} (model {body['model_version']}, "
        f"personalized={body['personalized']}, strategy={body.get('strategy')}):"
    )
    for item in body["items"]:
        why = (item.get("explanation") or {}).get("text") or ""
        typer.echo(
            f"  {item['item_id']:8} {item['score']:8.3f}  {item.get('title') or '':24} {why}"
        )
    _print_segments()
    spec = services.neo4j_spec(settings)
    typer.echo("\nTry it (a read-scope API key is kept in " + str(key_file) + "):")
    typer.echo(f"curl -s -H \"X-API-Key: $(cat {key_file})\" '{url}'")
    if settings.neo4j.managed:
        typer.echo(
            f"\nNeo4j Browser: {spec.browser_url}  (user neo4j, password in "
            f"{spec.password_file}; `dpgcn services env` prints it)"
        )
    typer.echo("Stop everything with `dpgcn services down`.")


def _demo_api_key(secrets_dir: Path) -> Path:
    """A read-scope key for the demo, created once and kept 0600 beside the other secrets
    (never printed)."""
    from graphstore import apikeys

    path = secrets_dir / "demo-api-key"
    with graph_driver() as driver:
        if path.exists():
            parts = apikeys.split_key(path.read_text().strip())
            stored = apikeys.get_key(driver, parts[0]) if parts else None
            if parts and apikeys.verify(stored, parts[1]):
                return path
        _, key = apikeys.create_key(driver, "read", name="demo")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(key + "\n")
    return path


def _print_segments() -> None:
    from graphstore import segments, writeback

    with graph_driver() as driver:
        active = writeback.get_active(driver)
        rows = segments.list_segments(driver, active.version) if active else []
    if rows:
        typer.echo("\nsegments of the active model:")
        for row in rows:
            typer.echo(f"  {row['size']:6d}  {row['name']}")


def main() -> None:
    from pydantic import ValidationError

    try:
        app()
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        typer.secho(
            f"error: bad setting {where}: {first.get('msg')}", fg=typer.colors.RED, err=True
        )
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
