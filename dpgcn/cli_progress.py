"""``dpgcn train --wait``: the pipeline's steps as progress bars, drawn from its run record.

The workers publish, in the run record (``workers/runs.py``): the current ``step`` and
``state``, ``<step>_started_at`` / ``<step>_finished_at``, the training ``progress``
(``epoch``, ``epochs``, ``loss``, ``val_auc`` after every epoch), the training ``metrics``
(``best_epoch``…), ``export_edges``, ``written`` (vectors per label, once write-back is
done), ``segments`` (``k``…) and ``waiting_for`` (a run holding the slot write-back needs).
One bar per step, opened when the step starts and closed when it finishes: a finished step's
bar stops (its elapsed time no longer grows), and training that stopped early is closed at the
epoch it stopped, with the early stop named. Log lines are written above the bars
(``logging_redirect_tqdm``), not through them. Where the output is not a terminal (a pipe, a
log file, CI) each change is one plain line instead (``train  epoch 3/8 loss=…``), since
bars redrawn in place would leave cursor movements in the file.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True)
class StepView:
    """What one step's bar shows, read from a run record."""

    step: str
    label: str
    n: int
    total: int | None
    note: str
    finished: bool
    #: Seconds the step took (from its record timestamps), once finished.
    seconds: float | None = None

    @property
    def epochs(self) -> bool:
        return self.step == "train"


def step_views(record: Mapping[str, Any], epochs_hint: int | None = None) -> list[StepView]:
    """The bars of the steps that started (or wait to start), from a run record."""
    views: list[StepView] = []
    for step, label in STEPS:
        started_at = record.get(f"{step}_started_at")
        finished_at = record.get(f"{step}_finished_at")
        waiting = step == "write_back" and record.get("waiting_for") and started_at is None
        if started_at is None and finished_at is None and not waiting:
            continue
        finished = finished_at is not None
        seconds = None
        if finished_at is not None and started_at is not None:
            seconds = max(0.0, float(finished_at) - float(started_at))
        if step == "train":
            views.append(_train_view(record, label, finished, seconds, epochs_hint))
            continue
        note = f"waiting for run {record['waiting_for']}" if waiting else ""
        if finished:
            note = _result(step, record)
        views.append(StepView(step, label, int(finished), 1, note, finished, seconds))
    return views


def _train_view(
    record: Mapping[str, Any],
    label: str,
    finished: bool,
    seconds: float | None,
    epochs_hint: int | None,
) -> StepView:
    progress = _mapping(record.get("progress"))
    epochs = int(progress.get("epochs") or 0) or epochs_hint
    epoch = int(progress.get("epoch") or 0)
    shown = [f"{k}={_number(progress[k])}" for k in ("loss", "val_auc") if k in progress]
    total = epochs
    if not finished:
        if epochs is not None and epoch >= epochs:
            shown.append("evaluating")
    else:
        metrics = _mapping(record.get("metrics"))
        best = metrics.get("best_epoch")
        if epochs is not None and 0 < epoch < epochs:
            why = "time budget reached" if metrics.get("stopped_at_budget") else "early stop"
            stop = f"{why} at epoch {epoch} of {epochs}" + (f", best {best}" if best else "")
            shown.append(stop)
            total = epoch  # the run ends here: the bar is complete, not stalled
        elif best:
            shown.append(f"best epoch {best}")
    return StepView("train", label, epoch, total, ", ".join(shown), finished, seconds)


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


class PipelineBars:
    """The bars of one run on a terminal (tqdm, one line per step), or on anything else (a
    log file, a pipe, CI) one plain line per change: a step starting, an epoch, a step done.
    :meth:`update` draws them from a run record."""

    def __init__(
        self, file: TextIO | None = None, epochs: int | None = None, tty: bool | None = None
    ) -> None:
        self.file = file
        self.epochs = epochs
        stream = file if file is not None else sys.stderr
        self.tty = stream.isatty() if tty is None else tty
        self.bars: dict[str, tqdm[Any]] = {}
        self.closed: set[str] = set()
        self.printed: dict[str, tuple[int, bool]] = {}

    def update(self, record: Mapping[str, Any]) -> None:
        for view in step_views(record, self.epochs):
            if view.step in self.closed:
                continue
            if self.tty:
                self._draw(view)
            else:
                self._print(view)
            if view.finished:
                self.closed.add(view.step)

    def _draw(self, view: StepView) -> None:
        bar = self.bars.get(view.step)
        if bar is None:
            bar = tqdm(
                total=view.total,
                desc=view.label.ljust(_WIDTH),
                position=len(self.bars),
                bar_format=_EPOCHS if view.epochs else _PLAIN,
                unit="epoch" if view.epochs else "it",
                file=self.file,
                leave=True,
                dynamic_ncols=True,
            )
            self.bars[view.step] = bar
        if bar.total != view.total:
            bar.total = view.total
        if view.n > bar.n:
            bar.update(view.n - bar.n)
        bar.set_postfix_str(view.note, refresh=False)
        if view.finished:
            bar.close()
        else:
            bar.refresh()

    def _print(self, view: StepView) -> None:
        state = (view.n, view.finished)
        if self.printed.get(view.step) == state:
            return
        self.printed[view.step] = state
        if view.finished:
            took = f" in {view.seconds:.1f}s" if view.seconds is not None else ""
            where = f" {view.n}/{view.total} epochs" if view.epochs else ""
            line = f"done{where}{took}" + (f": {view.note}" if view.note else "")
        elif view.epochs and view.n:
            total = view.total if view.total is not None else "?"
            line = f"epoch {view.n}/{total}" + (f" {view.note}" if view.note else "")
        else:
            line = "started" + (f" ({view.note})" if view.note else "")
        tqdm.write(f"{view.label.ljust(_WIDTH)}  {line}", file=self.file)

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
    epochs: int | None = None,
    tty: bool | None = None,
) -> Mapping[str, Any] | None:
    """Draw the run's bars until it succeeds or fails (its last record) or ``timeout``
    seconds pass (None). An error of ``outages`` from ``get_record`` (Redis down) is waited
    out: noted once above the bars, then polled again every 2 s. ``epochs``: the training
    bar's total until the first epoch reports it. ``tty``: bars (True) or plain lines (False);
    default: bars on a terminal."""
    deadline = time.monotonic() + timeout
    bars = PipelineBars(file, epochs, tty)
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
