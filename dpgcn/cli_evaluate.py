"""``dpgcn evaluate``: DP-GCN and the baselines compared on one dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dpgcn.cli_common import SetOption, fail, setting_changes
from dpgcn.cli_load import EventsOption, ModeOption, synthetic_spec
from dpgcn.settings import get_settings
from training.models import MODEL_SPECS

#: Where `dpgcn evaluate` looks for a dataset when --path is not given.
DATASET_DIRS = {
    "movielens": "ml-100k",
    "bestbuy": "bestbuy-xbox-small",
    "jdsearch": "jdsearch-sample",
    "amazon": "amazon-electronics-din-sample",
}


#: The labelled test file of a dataset whose rows form the query-conditioned task (MAP@5).
QUERY_TASK_FILES = {"bestbuy": "labelled_split/test.csv"}


PROTOCOLS = ("leave-last-out", "ratio-random", "ratio-temporal", "cold-item")
#: The registry's names, as the --models help lists them (``training.models`` loads no torch).
MODEL_NAMES = ", ".join(MODEL_SPECS)


def _progress_bar(total: int) -> tuple[object, object]:
    """A tqdm bar over model × seed runs (total and ETA) and the callback that drives it."""
    from tqdm import tqdm

    bar = tqdm(total=total, unit="run", desc="evaluate", dynamic_ncols=True)

    def progress(event: dict[str, object]) -> None:
        label = f"{event.get('model')} seed {event.get('seed')}"
        if event.get("start"):
            bar.set_description(label)
        elif event.get("done"):
            bar.update(1)
            if event.get("kept"):
                bar.set_postfix_str(f"{label}: stored run kept")
        elif "epoch" in event:
            shown = {
                k: f"{v:.4f}"
                for k, v in event.items()
                if k.startswith("val_") and isinstance(v, float)
            }
            bar.set_postfix(epoch=f"{event['epoch']}/{event.get('epochs')}", **shown)

    return bar, progress


def evaluate(
    dataset: Annotated[
        str, typer.Option(help="synthetic, movielens, bestbuy, jdsearch, amazon or generic.")
    ] = "synthetic",
    path: Annotated[
        Path | None, typer.Option(help="Dataset folder (default: $DPGCN_DATA_DIR/<dataset>).")
    ] = None,
    models: Annotated[
        str | None,
        typer.Option(help=f"Comma-separated models (default: all). Valid: {MODEL_NAMES}."),
    ] = None,
    protocol: Annotated[
        str,
        typer.Option(
            help="How test interactions are held out: leave-last-out, ratio-random, "
            "ratio-temporal (per user 80/10/10) or cold-item (docs/evaluation.md)."
        ),
    ] = "leave-last-out",
    seeds: Annotated[int, typer.Option(min=1, help="Seeds 0..N-1 (mean ± std).")] = 3,
    seed_list: Annotated[
        str | None,
        typer.Option("--seed-list", help="Comma-separated seeds to run (overrides --seeds)."),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(min=1, help="Epoch cap per model (default 200).")
    ] = None,
    patience: Annotated[
        int | None, typer.Option(min=0, help="Early-stopping patience (default 10).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Reports root.")] = Path("reports"),
    rerun: Annotated[
        bool, typer.Option(help="Train again even where a stored run has the same settings.")
    ] = False,
    users: Annotated[int, typer.Option(min=10, help="Synthetic: users.")] = 2000,
    items: Annotated[int, typer.Option(min=10, help="Synthetic: items.")] = 500,
    events_per_user: EventsOption = None,
    data_seed: Annotated[int, typer.Option(help="Synthetic: generator seed.")] = 0,
    mode: ModeOption = "default",
    export_dir: Annotated[
        Path | None,
        typer.Option(help="Where to write the export (default: <artifacts>/evaluate/<dataset>)."),
    ] = None,
    export_only: Annotated[
        bool, typer.Option(help="Write the export (and oracle / query task) and stop.")
    ] = False,
    reuse_export: Annotated[
        bool, typer.Option(help="Use the export already in --export-dir as it is.")
    ] = False,
    tuned: Annotated[
        bool,
        typer.Option(
            help="Train each model with its best config from `dpgcn tune` (<report dir>/"
            "tuned.json, or --tuned-file); reports go to <out>/<dataset>/<protocol>/tuned/."
        ),
    ] = False,
    tuned_file: Annotated[
        Path | None, typer.Option(help="The tuned.json that --tuned applies.")
    ] = None,
    settings_set: SetOption = None,
) -> None:
    """Train and compare DP-GCN and the baselines on a dataset; writes
    <out>/<dataset>/<protocol>/ (results.md, results.json, runs/, figures).

    Every (model, seed) run is stored under runs/ and kept when the settings match, so a long
    evaluation can be split into several calls (e.g. one per model); each call rebuilds the
    reports from every stored run. Synthetic exports get an ``oracle.npz`` (the planted
    preference model, evaluated as the ``oracle`` row); Best Buy gets a ``query_task.npz``
    from its labelled test file (MAP@5). ``--mode cold`` evaluates the synthetic generator's
    sparse/cold mode as the dataset ``synthetic-cold`` (its own export and report folders)."""
    import os

    from graphstore.errors import GraphStoreError
    from training.config import TrainConfig
    from training.errors import TrainingError
    from training.evaluate import check_models
    from training.evaluate import evaluate as run_evaluation

    if mode != "default" and dataset != "synthetic":
        fail(f"--mode {mode} is a mode of the synthetic generator, not of --dataset {dataset}", 2)
    spec = None
    if dataset == "synthetic":
        spec = synthetic_spec(
            mode, users=users, items=items, events_per_user=events_per_user, seed=data_seed
        )
    # The cold mode is another dataset: its own export and report folders, its own title.
    name = dataset if mode == "default" else f"{dataset}-{mode}"
    settings = get_settings()
    target = export_dir or settings.artifacts_dir / "evaluate" / name / "export"
    try:
        if protocol not in PROTOCOLS:
            raise TrainingError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
        names = check_models(models.split(",") if models else None)
        if reuse_export:
            if not (target / "graph.npz").is_file():
                raise TrainingError(f"--reuse-export: no export in {target}")
        elif spec is not None:
            from graphstore.export import export_source
            from graphstore.export_format import write_oracle
            from graphstore.sources import synthetic

            source, truth = synthetic.generate(spec)
            export_source(source, target)
            write_oracle(target, *truth.oracle_vectors())
        else:
            from graphstore.export import export_query_task, export_source
            from graphstore.sources.loaders import load_dataset

            if path is None:
                root = Path(os.environ.get("DPGCN_DATA_DIR", "../shared/data"))
                path = root / DATASET_DIRS.get(dataset, dataset)
            source = load_dataset(dataset, path)
            export_source(source, target)
            task_file = path / QUERY_TASK_FILES.get(dataset, "-")
            if dataset in QUERY_TASK_FILES and task_file.is_file():
                counts = export_query_task(task_file, target)
                typer.echo(f"query task from {task_file}: {counts}")
        if export_only:
            typer.echo(f"export written to {target}")
            return
        changes: dict[str, object] = {"eval.protocol": protocol}
        if epochs is not None:
            changes["optim.epochs"] = epochs
        if patience is not None:
            changes["optim.patience"] = patience
        config = TrainConfig().replace({**changes, **setting_changes(settings_set)})
        seed_values = (
            tuple(int(s) for s in seed_list.split(",")) if seed_list else tuple(range(seeds))
        )
        report_dir = out / name / protocol
        tuned_configs = None
        if tuned or tuned_file is not None:
            from training.tuning import TUNED_FILE, load_tuned

            tuned_configs = load_tuned(tuned_file or report_dir / TUNED_FILE)
            report_dir = report_dir / "tuned"
        bar, progress = _progress_bar(len(names) * len(seed_values))
        try:
            run_evaluation(
                target,
                report_dir,
                names,
                seed_values,
                progress,  # type: ignore[arg-type]
                config,
                dataset=name,
                reuse=not rerun,
                tuned=tuned_configs,
            )
        finally:
            bar.close()  # type: ignore[attr-defined]
    except (GraphStoreError, TrainingError, KeyError, OSError, ValueError) as e:
        fail(str(e))
    typer.echo(f"reports written to {report_dir}: results.md, results.json, runs/, figures")
