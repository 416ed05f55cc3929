"""``dpgcn tune``: equal-budget hyper-parameter tuning of the models on one dataset
(``training/tuning.py``, ``docs/tuning.md``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dpgcn.cli_common import fail
from dpgcn.cli_evaluate import MODEL_NAMES, PROTOCOLS
from dpgcn.settings import get_settings


def tune(
    dataset: Annotated[
        str, typer.Option(help="synthetic, movielens, bestbuy, jdsearch, amazon or generic.")
    ] = "movielens",
    path: Annotated[
        Path | None, typer.Option(help="Dataset folder (default: $DPGCN_DATA_DIR/<dataset>).")
    ] = None,
    models: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated models (default: every model with a search space). "
            f"Valid: {MODEL_NAMES}; popularity, itemknn and query_frequency have nothing to tune."
        ),
    ] = None,
    trials: Annotated[int, typer.Option(min=1, help="Trials per model (the same for all).")] = 20,
    seed: Annotated[int, typer.Option(help="Split and sampler seed.")] = 0,
    protocol: Annotated[
        str, typer.Option(help="Split whose validation part is scored (docs/evaluation.md).")
    ] = "leave-last-out",
    timeout: Annotated[
        float | None,
        typer.Option(min=1.0, help="Seconds cap per model's study (fewer trials if it hits)."),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(min=1, help="Epoch cap per trial (default 200).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Reports root.")] = Path("reports"),
    export_dir: Annotated[
        Path | None,
        typer.Option(help="Where the export is (default: <artifacts>/evaluate/<dataset>/export)."),
    ] = None,
    reuse_export: Annotated[
        bool, typer.Option(help="Use the export already in --export-dir as it is.")
    ] = False,
    storage: Annotated[
        Path | None,
        typer.Option(
            help="Folder of the studies' Optuna journal files; a rerun resumes them "
            "(default: <out>/<dataset>/<protocol>/studies)."
        ),
    ] = None,
    stop_after: Annotated[
        float | None,
        typer.Option(
            min=1.0,
            help="Start no trial after this many seconds; the same command again continues "
            "the unfinished studies up to --trials (chunks of a shared machine).",
        ),
    ] = None,
) -> None:
    """Tune every model with the same number of Optuna trials (TPE, successive-halving pruning
    of the per-epoch validation metric on the training pairs scored); writes
    <out>/<dataset>/<protocol>/tuned.json and tuned.md. The studies are stored, so a rerun
    (or a call with other --models) continues them.
    Apply the result with `dpgcn evaluate --tuned`."""
    from dpgcn.cli_evaluate import evaluate
    from training.config import TrainConfig
    from training.errors import TrainingError
    from training.tuning import TUNED_FILE, tuned_table
    from training.tuning import tune as run_tune

    settings = get_settings()
    target = export_dir or settings.artifacts_dir / "evaluate" / dataset / "export"
    if protocol not in PROTOCOLS:
        fail(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    if reuse_export:
        if not (target / "graph.npz").is_file():
            fail(f"--reuse-export: no export in {target}")
    else:
        evaluate(dataset=dataset, path=path, export_dir=target, export_only=True)
    report_dir = out / dataset / protocol
    config = TrainConfig() if epochs is None else TrainConfig().replace({"optim.epochs": epochs})

    def progress(event: dict[str, object]) -> None:
        value = event.get("value")
        shown = f"{value:.4f}" if isinstance(value, float) else "-"
        typer.echo(
            f"{event['model']} trial {event['trial']}/{event['trials']}: {event['state']} {shown}"
        )

    try:
        result = run_tune(
            target,
            models.split(",") if models else None,
            trials,
            seed,
            protocol,
            timeout,
            out_path=report_dir / TUNED_FILE,
            config=config,
            progress=progress,
            storage_dir=storage or report_dir / "studies",
            stop_after=stop_after,
        )
    except (TrainingError, OSError, ValueError) as e:
        fail(str(e))
    table = tuned_table(result)
    (report_dir / "tuned.md").write_text(table)
    typer.echo(table)
    typer.echo(f"best configs written to {report_dir / TUNED_FILE}")
    if result.get("unfinished"):
        typer.echo(
            f"stopped after {stop_after:g} s; unfinished: {', '.join(result['unfinished'])} "
            "(run the same command again to continue)"
        )
