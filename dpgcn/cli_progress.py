"""``dpgcn train --wait``: the pipeline's steps as progress bars, drawn from its run record.

The workers publish, in the run record (``workers/runs.py``): the current ``step`` and
``state``, ``<step>_started_at`` / ``<step>_finished_at``, the training ``progress``
(``epoch``, ``epochs``, ``loss``, ``val_auc`` after every epoch), the training ``metrics``
(``best_epoch``…), ``export_edges``, ``written`` (vectors per label, once write-back is
done), ``segments`` (``k``…) and ``waiting_for`` (a run holding the slot write-back needs).
One bar per step, opened when the step starts and closed when it finishes: a finished step's
bar stops (its elapsed time no longer grows), and training that stopped early is closed at the
epoch it stopped, with the early stop named. Log lines are written above the bars
(``logging_redirect_tqdm``), not through them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

#: The pipeline's steps in order, as named in the run record, with the bars' labels.
STEPS = (
    ("export", "export"),
    ("train", "train"),
    ("write_back", "write-back"),
    ("segments", "segments"),
    ("activate", "activate"),
)
_WIDTH = max(len(label) for _, label in STEPS)
#: Steps without a count: a bar with the step's elapsed time and what it reported.
_PLAIN = "{desc}: {bar:20} [{elapsed}]{postfix}"
_EPOCHS = "{desc}: {bar:20} {n_fmt}/{total_fmt} epochs [{elapsed}, {rate_fmt}]{postfix}"


def _mapping(value: Any) -> Mapping[str, Any]:
    """A record field holding an object (the record keeps some as JSON text)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, Mapping) else {}


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


class PipelineBars:
    """The bars of one run; :meth:`update` redraws them from a run record."""

    def __init__(self, file: TextIO | None = None) -> None:
        self.file = file
        self.bars: dict[str, tqdm[Any]] = {}
        self.closed: set[str] = set()

    def _bar(self, step: str, label: str, total: int | None, epochs: bool = False) -> tqdm[Any]:
        bar = self.bars.get(step)
        if bar is None:
            bar = tqdm(
                total=total,
                desc=label.ljust(_WIDTH),
                position=len(self.bars),
                bar_format=_EPOCHS if epochs else _PLAIN,
                unit="epoch" if epochs else "it",
                file=self.file,
                leave=True,
                dynamic_ncols=True,
            )
            self.bars[step] = bar
        return bar

    def update(self, record: Mapping[str, Any]) -> None:
        for step, label in STEPS:
            started = record.get(f"{step}_started_at") is not None
            finished = record.get(f"{step}_finished_at") is not None
            waiting = step == "write_back" and record.get("waiting_for") and not started
            if step in self.closed or not (started or finished or waiting):
                continue
            if step == "train":
                self._train(record, finished)
            else:
                bar = self._bar(step, label, 1)
                if waiting:
                    bar.set_postfix_str(f"waiting for run {record['waiting_for']}", refresh=False)
                if finished:
                    bar.update(1 - bar.n)
                    bar.set_postfix_str(self._result(step, record), refresh=False)
            if finished:
                self.bars[step].close()
                self.closed.add(step)
            else:
                self.bars[step].refresh()

    def _train(self, record: Mapping[str, Any], finished: bool) -> None:
        progress = _mapping(record.get("progress"))
        epochs = int(progress.get("epochs") or 0) or None
        bar = self._bar("train", "train", epochs, epochs=True)
        if epochs is not None and bar.total != epochs:
            bar.total = epochs
        epoch = int(progress.get("epoch") or 0)
        if epoch > bar.n:
            bar.update(epoch - bar.n)
        shown = {k: _number(progress[k]) for k in ("loss", "val_auc") if k in progress}
        if not finished:
            if epochs is not None and epoch >= epochs:
                shown["now"] = "evaluating"
            bar.set_postfix(shown, refresh=False)
            return
        metrics = _mapping(record.get("metrics"))
        best = metrics.get("best_epoch")
        if epochs is not None and 0 < epoch < epochs:
            shown["early stop"] = f"epoch {epoch} of {epochs}" + (f", best {best}" if best else "")
            bar.total = epoch  # the run ends here: the bar is complete, not stalled
        elif best:
            shown["best epoch"] = str(best)
        bar.set_postfix(shown, refresh=False)

    @staticmethod
    def _result(step: str, record: Mapping[str, Any]) -> str:
        if step == "export" and record.get("export_edges") is not None:
            return f"{int(record['export_edges']):,} edges"
        written = _mapping(record.get("written"))
        if step == "write_back" and written:
            total = sum(int(v) for v in written.values())
            parts = ", ".join(f"{k} {int(v):,}" for k, v in written.items())
            return f"{total:,} vectors ({parts})"
        segments = _mapping(record.get("segments"))
        if step == "segments" and segments.get("k") is not None:
            return f"{segments['k']} segments"
        return "done"

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def follow_run(
    get_record: Callable[[], Mapping[str, Any] | None],
    timeout: float,
    *,
    interval: float = 1.0,
    file: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
    outages: tuple[type[BaseException], ...] = (),
) -> Mapping[str, Any] | None:
    """Draw the run's bars until it succeeds or fails (its last record) or ``timeout``
    seconds pass (None). An error of ``outages`` from ``get_record`` (Redis down) is waited
    out: noted once above the bars, then polled again every 2 s."""
    deadline = time.monotonic() + timeout
    bars = PipelineBars(file)
    down = False
    try:
        with logging_redirect_tqdm():
            while time.monotonic() < deadline:
                try:
                    record = get_record() or {}
                except outages as e:
                    if not down:
                        tqdm.write(f"waiting for the run record ({type(e).__name__})", file=file)
                    down = True
                    sleep(2.0)
                    continue
                down = False
                bars.update(record)
                if record.get("state") in ("SUCCESS", "FAILURE"):
                    return record
                sleep(interval)
    finally:
        bars.close()
    return None
