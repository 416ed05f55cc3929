"""Run the evaluation harness on export directories, without Neo4j or the service stack.

Used to evaluate on a machine that only has PyTorch (e.g. a GPU box): make the exports where
the data is (``graphstore.export.export_source`` of a loader's rows, as ``dpgcn evaluate``
does), ship the folders, then::

    PYTHONPATH=. python bench/evaluate_exports.py EXPORT_DIR OUT_DIR [--seeds 3] [--models a,b]

Writes the same ``results.md``, ``results.json`` and figures as ``dpgcn evaluate``.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from training.device import select_device
from training.evaluate import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("export_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--models", default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    models = args.models.split(",") if args.models else None
    evaluate(args.export_dir, args.out_dir, models, tuple(range(args.seeds)))
    print(f"{args.export_dir}: done in {time.perf_counter() - started:.0f}s on {select_device()}")


if __name__ == "__main__":
    main()
