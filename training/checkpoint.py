"""Interval checkpoints of a training run, and resuming from them.

:func:`training.train.fit` given a checkpoint directory writes ``checkpoint.pt`` there at the
end of the first epoch after ``TrainConfig.optim.checkpoint_interval_s`` seconds have passed
since the last one, and once more when the epoch loop ends (early stop, the cap or the time
budget, marked ``done``). The file holds everything the loop depends on: the model and
optimiser states, the gradient scaler, every random generator the epochs draw from (Python's,
numpy's global one, the loop's ``numpy.random.Generator``, torch's CPU and CUDA generators),
the epoch reached, the best-so-far weights, selection value and epoch, the early-stopping
counter, the history, and the seconds spent in the epoch loop so far (the time budget,
``TrainConfig.optim.max_train_seconds``, counts them after a resume). A fit started with the
same directory loads it and continues with the next epoch, so on one machine and thread count a
resumed run ends with the same weights and metrics as an uninterrupted one
(``tests/unit/training/test_checkpoint_resume.py`` kills a training process with SIGKILL and
checks it).

Writes are atomic: a temporary file in the same directory, flushed and ``fsync``-ed, then
renamed over ``checkpoint.pt``, so a kill at any moment leaves the previous checkpoint or the
new one, never a torn file. The checkpoint records the :class:`~training.config.TrainConfig`
(device and checkpoint interval aside) and the split's sizes; a directory holding another
run's checkpoint is refused (:class:`CheckpointError`) rather than resumed.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import random
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.config import TrainConfig
from training.config_paths import settings_differ
from training.errors import ConfigError, TrainingError
from training.models import check_trained_settings
from training.splits import Split

logger = logging.getLogger(__name__)

#: File name of the checkpoint inside its directory.
CHECKPOINT_FILE = "checkpoint.pt"
FORMAT = 1
#: Config settings (dotted paths) that may differ between a checkpoint and the run resuming it.
_FREE_FIELDS = ("device", "optim.checkpoint_interval_s")


class CheckpointError(TrainingError):
    """A checkpoint cannot be read, or belongs to another run than the one resuming it."""


@dataclass
class LoopState:
    """The epoch loop's own state: what :func:`training.train.fit` carries between epochs."""

    #: The last completed epoch (0 before the first).
    epoch: int = 0
    best: float = -math.inf
    stale: int = 0
    best_epoch: int = 0
    best_val_auc: float = float("nan")
    best_state: dict[str, torch.Tensor] | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    #: The loop has ended (early stop, the cap or the time budget); a resumed fit trains no
    #: more epochs.
    done: bool = False
    #: Seconds spent in the epoch loop, by this process and (up to their last checkpoint) the
    #: processes it resumed from: what ``TrainConfig.optim.max_train_seconds`` bounds.
    elapsed_s: float = 0.0
    #: The time budget ended the loop (the next epoch would not have fitted in it).
    stopped_at_budget: bool = False

    def improve(self, score: float, epoch: int, val_auc: float, model: torch.nn.Module) -> bool:
        """Record an epoch's selection value; ``True`` when it is the best so far (its weights
        are kept), otherwise the early-stopping counter goes up."""
        if score > self.best:
            self.best, self.stale, self.best_epoch = score, 0, epoch
            self.best_val_auc = val_auc
            self.best_state = copy.deepcopy(model.state_dict())
            return True
        self.stale += 1
        return False


@dataclass
class Trainer:
    """The objects a checkpoint saves and restores besides the loop state."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    rng: np.random.Generator


class Checkpointer:
    """Interval checkpoints of one run in ``directory`` (see the module docstring).

    Args:
        directory: Where ``checkpoint.pt`` lives (created when missing).
        config: The run's config; a checkpoint of another config is refused.
        fingerprint: Sizes of the data trained on (users, items, interactions…); a
            checkpoint of other data is refused.
    """

    def __init__(
        self, directory: Path | str, config: TrainConfig, fingerprint: dict[str, int]
    ) -> None:
        self.directory = Path(directory)
        self.path = self.directory / CHECKPOINT_FILE
        self.config = config
        self.fingerprint = dict(fingerprint)
        self.interval_s = config.optim.checkpoint_interval_s
        self._last = time.monotonic()

    def due(self) -> bool:
        """Whether the interval has passed since the last checkpoint (or the start)."""
        return time.monotonic() - self._last >= self.interval_s

    def save(self, state: LoopState, trainer: Trainer) -> None:
        """Write the checkpoint atomically (temporary file, fsync, rename)."""
        payload = {
            "format": FORMAT,
            "config": json.dumps(_comparable(self.config), sort_keys=True),
            "fingerprint": self.fingerprint,
            "loop": {
                "epoch": state.epoch,
                "best": state.best,
                "stale": state.stale,
                "best_epoch": state.best_epoch,
                "best_val_auc": state.best_val_auc,
                "history": state.history,
                "done": state.done,
                "elapsed_s": state.elapsed_s,
                "stopped_at_budget": state.stopped_at_budget,
            },
            "best_state": None if state.best_state is None else _cpu(state.best_state),
            "model": _cpu(trainer.model.state_dict()),
            "optimizer": trainer.optimizer.state_dict(),
            "scaler": trainer.scaler.state_dict(),
            "rng": rng_states(trainer.rng),
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.directory / f".{CHECKPOINT_FILE}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            with tmp.open("wb") as f:
                torch.save(payload, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(self.directory)
        self._last = time.monotonic()
        logger.info("checkpoint: epoch %d written to %s", state.epoch, self.path)

    def restore(self, trainer: Trainer, device: torch.device) -> LoopState | None:
        """Load the checkpoint into ``trainer`` (weights, optimiser, scaler, random
        generators) and return its loop state; ``None`` when there is none.

        Raises:
            CheckpointError: The file is unreadable or belongs to another config or data.
        """
        if not self.path.is_file():
            return None
        try:
            payload = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise CheckpointError(f"{self.path}: unreadable checkpoint ({e})") from e
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise CheckpointError(f"{self.path}: not a format-{FORMAT} training checkpoint")
        stored = json.loads(payload["config"])
        try:
            check_trained_settings(self.config.model.name, stored, self.path)
        except ConfigError as e:
            raise CheckpointError(str(e)) from e
        # by dotted path: a checkpoint written before TrainConfig had sections (flat names)
        # still resumes under the same settings, and a setting added since counts as its
        # default (as stored runs are matched: training.report.same_settings)
        diff = settings_differ(TrainConfig, stored, _comparable(self.config), _FREE_FIELDS)
        if diff:
            raise CheckpointError(
                f"{self.path}: checkpoint of another TrainConfig (fields differ: "
                f"{', '.join(diff)}); use another directory or remove it"
            )
        if payload["fingerprint"] != self.fingerprint:
            raise CheckpointError(
                f"{self.path}: checkpoint of other data ({payload['fingerprint']}, "
                f"this run {self.fingerprint}); use another directory or remove it"
            )
        trainer.model.load_state_dict(payload["model"])
        try:  # e.g. Adam's state for the mini-batch path's SparseDenseAdam (older checkpoints)
            trainer.optimizer.load_state_dict(payload["optimizer"])
        except (ValueError, KeyError) as e:
            raise CheckpointError(
                f"{self.path}: its optimiser state does not fit this run's optimiser "
                f"({type(trainer.optimizer).__name__}: {e}); use another directory or remove it"
            ) from e
        if payload["scaler"] and trainer.scaler.is_enabled():
            trainer.scaler.load_state_dict(payload["scaler"])
        set_rng_states(payload["rng"], trainer.rng)
        loop = payload["loop"]
        best_state = payload["best_state"]
        state = LoopState(
            epoch=int(loop["epoch"]),
            best=float(loop["best"]),
            stale=int(loop["stale"]),
            best_epoch=int(loop["best_epoch"]),
            best_val_auc=float(loop["best_val_auc"]),
            best_state=None
            if best_state is None
            else {k: v.to(device) for k, v in best_state.items()},
            history=list(loop["history"]),
            done=bool(loop["done"]),
            # checkpoints written before the time budget have neither: no time counted
            elapsed_s=float(loop.get("elapsed_s", 0.0)),
            stopped_at_budget=bool(loop.get("stopped_at_budget", False)),
        )
        self._last = time.monotonic()
        logger.info(
            "checkpoint: resuming %s after epoch %d (%.1fs of training)%s from %s",
            self.config.model.name,
            state.epoch,
            state.elapsed_s,
            " (loop finished)" if state.done else "",
            self.path,
        )
        return state

    def remove(self) -> None:
        """Delete the checkpoint (the run's outputs are written)."""
        self.path.unlink(missing_ok=True)


def fingerprint(split: Split) -> dict[str, int]:
    """The sizes of a split a checkpoint is tied to."""
    return {
        "users": split.n_users,
        "items": split.n_items,
        "queries": split.n_queries,
        "train": len(split.train),
        "val": len(split.val),
        "test": len(split.test),
    }


def rng_states(rng: np.random.Generator) -> dict[str, Any]:
    """Every random generator a training epoch may draw from, in a form ``torch.load``
    reads with ``weights_only=True``."""
    legacy = np.random.get_state(legacy=False)
    assert isinstance(legacy, dict)
    return {
        "python": random.getstate(),
        "numpy_global": {
            "key": torch.from_numpy(np.asarray(legacy["state"]["key"]).astype(np.int64)),
            "pos": int(legacy["state"]["pos"]),
            "has_gauss": int(legacy["has_gauss"]),
            "gauss": float(legacy["gauss"]),
        },
        "numpy_generator": json.dumps(rng.bit_generator.state),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_states(states: dict[str, Any], rng: np.random.Generator) -> None:
    """Restore what :func:`rng_states` saved (CUDA generators only where CUDA is present)."""
    python = states["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    g = states["numpy_global"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": g["key"].numpy().astype(np.uint32), "pos": g["pos"]},
            "has_gauss": g["has_gauss"],
            "gauss": g["gauss"],
        }
    )
    rng.bit_generator.state = json.loads(states["numpy_generator"])
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _comparable(config: TrainConfig) -> dict[str, Any]:
    out = config.to_paths()
    for name in _FREE_FIELDS:
        out.pop(name, None)
    return out


def _cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in state.items()}


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable (best effort: not every file system allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


__all__ = [
    "CHECKPOINT_FILE",
    "CheckpointError",
    "Checkpointer",
    "LoopState",
    "Trainer",
    "fingerprint",
    "rng_states",
    "set_rng_states",
]
