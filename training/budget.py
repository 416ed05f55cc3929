"""The epoch loop's time budget (``optim.max_train_seconds``, ``docs/training.md``, "A time
budget"): whether the next epoch may start.

An epoch starts only if the loop's seconds so far plus the longest epoch so far (training and
validation, the history's ``seconds``) fit in the budget; the first epoch of a run always
starts, and a budget of 0 is no limit. The longest epoch seen is the estimate of the next
one's cost, and an epoch is never cut short, because an epoch is what is validated and
checkpointed: the loop ends within the budget unless an epoch takes longer than every epoch
before it.

The loop's seconds are kept in ``LoopState.elapsed_s``, which checkpoints carry, so a killed
and resumed run counts the seconds of the processes before it (up to their last checkpoint)
and keeps to the same budget. :func:`training.loop.fit` and each rank 0 of
:mod:`training.distributed` hold one :class:`TimeBudget` per epoch loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from training.checkpoint import LoopState

logger = logging.getLogger(__name__)


class TimeBudget:
    """``seconds`` of epoch loop over ``state`` (0: no limit), measured on ``clock``.

    ``clock`` must be the clock the history's epoch ``seconds`` are measured with (the loop
    passes its own); only differences of its readings count, so processes whose clocks have
    different origins share one budget through ``state.elapsed_s``. ``name`` (the model) is for
    the log line."""

    def __init__(
        self,
        state: LoopState,
        seconds: float,
        name: str = "training",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state = state
        self.seconds = seconds
        self.name = name
        self.clock = clock
        self._before = state.elapsed_s
        self._start = clock()

    def update(self) -> float:
        """Bring ``state.elapsed_s`` up to now (before a checkpoint is written); returns it."""
        self.state.elapsed_s = self._before + self.clock() - self._start
        return self.state.elapsed_s

    def longest_epoch(self) -> float:
        """The longest epoch so far, in seconds (0 before the first)."""
        return max((float(h.get("seconds", 0.0)) for h in self.state.history), default=0.0)

    def allows_next_epoch(self) -> bool:
        """Whether the next epoch may start; when it may not, ``state.stopped_at_budget`` is
        set and the stop is logged."""
        elapsed = self.update()
        if self.seconds <= 0 or self.state.epoch == 0:
            return True
        longest = self.longest_epoch()
        if elapsed + longest <= self.seconds:
            return True
        self.state.stopped_at_budget = True
        logger.info(
            "%s: time budget stops training after epoch %d (%.1fs spent + longest epoch %.1fs "
            "> optim.max_train_seconds=%g; best epoch %d)",
            self.name,
            self.state.epoch,
            elapsed,
            longest,
            self.seconds,
            self.state.best_epoch,
        )
        return False


__all__ = ["TimeBudget"]
