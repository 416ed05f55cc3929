"""The ``dpgcn`` command line. User-facing output is printed here and nowhere else."""

from __future__ import annotations

import logging
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from dpgcn import services
from dpgcn.cli_apikey import apikey_app
from dpgcn.cli_backup import backup_app
from dpgcn.cli_common import SetOption, fail, graph_driver, setting_changes
from dpgcn.cli_evaluate import evaluate
from dpgcn.cli_export import export
from dpgcn.cli_load import load_app, load_synthetic
from dpgcn.cli_privacy import privacy_app
from dpgcn.cli_segments import segments_app
from dpgcn.cli_tune import tune
from dpgcn.logs import configure_logging
from dpgcn.settings import get_settings

app = typer.Typer(
    help="DP-GCN graph recommender on Neo4j.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
services_app = typer.Typer(
    help="Manage Neo4j and Redis (local, or external via env).", no_args_is_help=True
)
app.add_typer(services_app, name="services")
app.add_typer(load_app, name="load")
app.add_typer(apikey_app, name="apikey")
app.add_typer(segments_app, name="segments")
app.add_typer(privacy_app, name="privacy")
app.add_typer(backup_app, name="backup")
app.command("export")(export)
app.command("evaluate")(evaluate)
app.command("tune")(tune)

logger = logging.getLogger(__name__)


#: Commands that run a server or worker: their logs are their output, nothing is quieted.
_LONG_RUNNING = frozenset({"worker", "beat", "serve"})


@app.callback()
def _main(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    configure_logging("DEBUG" if verbose else get_settings().log_level)
    if not verbose and ctx.invoked_subcommand not in _LONG_RUNNING:
        # a command's output is what it prints; the graph store's progress notes ("schema
        # applied (19 statements)", "loaded …") belong in the logs of servers and workers
        logging.getLogger("graphstore").setLevel(logging.WARNING)


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


def _one_service(action: str, name: str) -> None:
    settings = get_settings()
    try:
        if action == "stop":
            stopped = services.stop_service(settings, name)
            typer.echo(f"{name}: " + ("stopped" if stopped else "was not running"))
            return
        getattr(services, f"{action}_service")(settings, name)
    except services.ServiceError as e:
        fail(str(e))
    typer.echo(f"{name}: {action}ed")


@services_app.command("stop")
def services_stop(
    name: Annotated[str, typer.Argument(help="neo4j, redis, worker or api.")],
) -> None:
    """Stop one managed service or app process (data stays in DPGCN_HOME)."""
    _one_service("stop", name)


@services_app.command("start")
def services_start(
    name: Annotated[str, typer.Argument(help="neo4j, redis, worker or api.")],
) -> None:
    """Start one managed service or app process (no-op when it runs)."""
    _one_service("start", name)


@services_app.command("restart")
def services_restart(
    name: Annotated[str, typer.Argument(help="neo4j, redis, worker or api.")],
) -> None:
    """Stop (when running) and start one managed service or app process."""
    _one_service("restart", name)


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


# ------------------------------------------------------------------------------------ pipeline


@app.command("train")
def train(
    model: Annotated[str, typer.Option(help="Model to train (dpgcn or a baseline).")] = "dpgcn",
    epochs: Annotated[int | None, typer.Option(min=1, help="Training epochs.")] = None,
    dim: Annotated[int | None, typer.Option(min=2, help="Embedding dimension.")] = None,
    batching: Annotated[
        str | None,
        typer.Option(
            help="auto (mini-batches from TrainConfig.optim.minibatch_min_edges training "
            "interactions), full or minibatch (neighbour-sampled, DP-GCN models)."
        ),
    ] = None,
    cold_simulation: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=0.9,
            help="DP-GCN: share of the trained items computed as new items (no ID vector, "
            "no interaction edges) at each training step, for catalogues where many items "
            "arrive between trainings; 0 (the default) is off. Where many items are new, "
            "also --set model.dpgcn.relation_mean=node --set model.dpgcn.side_scale=5 "
            "(docs/model.md).",
        ),
    ] = None,
    processes: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Data-parallel training processes (torch DDP): one per GPU on CUDA "
            "(at most the worker's GPUs), CPU processes sharing the cores otherwise.",
        ),
    ] = None,
    settings_set: SetOption = None,
    wait: Annotated[bool, typer.Option(help="Follow the run with a progress bar.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 3600.0,
) -> None:
    """Queue the export → train → write-back → segments → activate pipeline on the Celery
    workers; with --wait, follow its steps as progress bars."""
    from training.models import MODEL_REGISTRY
    from workers import pipeline, runs

    if model not in MODEL_REGISTRY:
        fail(f"unknown model {model!r} for --model (valid: {', '.join(MODEL_REGISTRY)})", code=2)
    from training.config import BATCHING, TrainConfig
    from training.errors import ConfigError

    # the run's TrainConfig changes by dotted path, as the Celery message carries them
    config: dict[str, object] = {"model.name": model}
    if epochs is not None:
        config["optim.epochs"] = epochs
    if dim is not None:
        config["model.dim"] = dim
    if batching is not None:
        if batching not in BATCHING:
            fail(f"unknown --batching {batching!r} (valid: {', '.join(BATCHING)})", code=2)
        config["optim.batching"] = batching
    if cold_simulation is not None:
        config["model.dpgcn.cold_simulation"] = cold_simulation
    if processes is not None:
        config["optim.processes"] = processes
    config.update(setting_changes(settings_set))
    try:
        TrainConfig().replace(config)
    except ConfigError as e:
        fail(str(e), code=2)
    run_id = runs.new_run_id()
    pipeline.submit_pipeline(run_id, config)
    typer.echo(f"run {run_id} queued")
    if wait:
        record = _follow(run_id, timeout, epochs or TrainConfig().optim.epochs)
        if record.get("state") != "SUCCESS":
            fail(f"run {run_id} ended {record.get('state')}: {record.get('error', '')}")
        typer.echo(f"run {run_id} done: model version {run_id} is active")


def _follow(run_id: str, timeout: float, epochs: int | None = None) -> Mapping[str, object]:
    from dpgcn.cli_progress import follow_run
    from workers import runs

    # a Redis outage is waited out (patient reads, then polled again), never a traceback
    record = follow_run(
        lambda: runs.get(run_id, patient=True),
        timeout,
        outages=(runs.redis.RedisError,),
        epochs=epochs,
    )
    if record is None:
        fail(f"run {run_id} did not finish within {timeout:.0f}s")
    return record


@app.command("jobs")
def jobs(limit: Annotated[int, typer.Option(min=1)] = 20) -> None:
    """List pipeline runs with state, step and metrics."""
    from workers import runs

    for r in runs.list_runs(limit):
        metrics = r.get("metrics") or {}
        shown = ", ".join(
            f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
            for k, v in _headline(metrics).items()
        )
        extra = "".join(f"  {key}={r[key]}" for key in ("retries", "recoveries") if r.get(key))
        typer.echo(f"{r['run_id']}  {r.get('state', ''):8} {r.get('step', ''):10} {shown}{extra}")


def _headline(metrics: Mapping[str, object]) -> dict[str, object]:
    """The metrics a run's line shows: model, best epoch, validation and test AUC and the
    first test NDCG (all of them are in the run's metrics.json)."""
    keys = ["model", "best_epoch", "val_auc", "test_auc"]
    keys += [k for k in metrics if k.startswith("test_ndcg")][:1]
    shown = {k: metrics[k] for k in keys if k in metrics}
    return shown or dict(list(metrics.items())[:4])


@app.command("worker")
def worker(
    queues: Annotated[str, typer.Option(help="Comma-separated queues.")] = "graph,training",
    concurrency: Annotated[int, typer.Option(min=1)] = 1,
    pool: Annotated[str, typer.Option(help="Celery pool (solo is CUDA-safe).")] = "solo",
    name: Annotated[str | None, typer.Option(help="Worker node name.")] = None,
    device: Annotated[
        str,
        typer.Option(
            help="Device the training steps run on: auto (CUDA when present), cpu, cuda or "
            "cuda:N (mixed precision on CUDA)."
        ),
    ] = "auto",
) -> None:
    """Run a Celery worker (training queue: solo pool, one task at a time)."""
    from training.device import select_device
    from training.errors import ConfigError
    from workers import pipeline
    from workers.app import app as celery_app

    try:
        chosen = select_device(device)
    except ConfigError as e:
        fail(f"--device: {e}", code=2)
    pipeline.set_worker_device(device)
    logger.info("worker trains on %s (--device %s)", chosen, device)

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
