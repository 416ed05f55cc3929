"""Run the evaluation harness on export directories, without Neo4j or the service stack.

Used to evaluate on a machine that only has PyTorch (e.g. a GPU box): make the exports where
the data is (``graphstore.export.export_source`` of a loader's rows, as ``dpgcn evaluate``
does), ship the folders, then::

    PYTHONPATH=. python bench/evaluate_exports.py EXPORT_DIR OUT_DIR [--seeds 3] [--models a,b]
        [--epochs N] [--protocol leave-last-out|ratio-random|ratio-temporal|cold-item]
        [--dataset NAME]

Writes the same ``results.md``, ``results.json`` and figures as ``dpgcn evaluate`` (with the
oracle row when the export has an ``oracle.npz`` and MAP@5 when it has a ``query_task.npz``).
``bench/device_eval.sh`` runs it for every dataset on a GPU machine.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from training.config import TrainConfig
from training.device import select_device
from training.evaluate import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("export_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--models", default=None)
    parser.add_argument("--epochs", type=int, default=None, help="default: TrainConfig's")
    parser.add_argument("--protocol", default=None, help="default: TrainConfig's")
    parser.add_argument("--dataset", default=None, help="name in the report's title")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    models = args.models.split(",") if args.models else None
    overrides: dict[str, object] = {}
    if args.epochs is not None:
        overrides["optim.epochs"] = args.epochs
    if args.protocol is not None:
        overrides["eval.protocol"] = args.protocol
    config = TrainConfig().replace(overrides)
    evaluate(
        args.export_dir,
        args.out_dir,
        models,
        tuple(range(args.seeds)),
        config=config,
        dataset=args.dataset or args.export_dir.name,
    )
    print(f"{args.export_dir}: done in {time.perf_counter() - started:.0f}s on {select_device()}")


if __name__ == "__main__":
    main()
