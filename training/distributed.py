"""Data-parallel training in several processes with ``torch.distributed`` (one rank per GPU,
or several CPU processes).

:func:`fit_distributed` starts ``processes`` ranks (``torch.multiprocessing``, spawn), each of
which builds the same model from the same seed, wraps it in
:class:`~torch.nn.parallel.DistributedDataParallel` (NCCL on CUDA, rank ``r`` on
``cuda:r``; Gloo on the CPU) and trains on its shard of the training interactions:

* **Full-batch** epochs: every epoch one permutation of ``split.train`` drawn from
  ``(seed, epoch)`` (the same on every rank); rank ``r`` visits positions ``r, r + N, …`` of
  it, padded by wrapping so that every rank runs the same number of steps (as torch's
  ``DistributedSampler`` does).
* **Mini-batch** epochs: each rank's ``LinkNeighborLoader`` holds its shard of the positives
  (a permutation drawn from the seed, split the same way); the loader's shuffling, negatives
  and neighbour sampling draw from torch's generator, seeded per ``(seed, epoch, rank)``.

Each optimisation step's gradients are averaged over the ranks by DDP's all-reduce, so a step
sees ``N`` × ``batch_size`` interactions and an epoch has ``1 / N`` as many steps. Every
random draw is a function of ``(seed, epoch, rank)``, so a run is reproducible for a seed and
a number of processes, and a resumed run continues exactly.

Rank 0 alone validates after each epoch (the same :class:`~training.loop.Validator` as
:func:`~training.loop.fit`), decides early stopping and, before each epoch, whether the epoch
fits in the time budget (``optim.max_train_seconds``, :class:`~training.budget.TimeBudget`, the
same rule as :func:`~training.loop.fit`), and broadcasts the decisions, writes the
interval checkpoints (:mod:`training.checkpoint`; every rank resumes from the same file) and
reports progress. The calling process then loads rank 0's best weights and returns the same
:class:`~training.loop.FitResult` as :func:`~training.loop.fit` (running the DDPG stage, if
the model has one, itself).

A rank that dies or raises ends the job: the others are stopped and
:class:`DistributedError` names the rank. Collectives and the rendezvous time out after
``timeout_s`` seconds, so a rank that never arrives cannot hang the others.
"""

from __future__ import annotations

import json
import logging
import math
import signal
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from training.budget import TimeBudget
from training.checkpoint import Checkpointer, LoopState, Trainer, fingerprint
from training.config import TrainConfig
from training.dataset import build_graph_data
from training.device import deterministic, make_grad_scaler, seed_everything, select_device, use_amp
from training.errors import TrainingError
from training.loop import (
    FitResult,
    NotInductiveError,
    ProgressFn,
    Validator,
    end_epoch,
    fit,
    negative_pool,
    train_epoch,
    train_policy,
)
from training.minibatch import minibatch_epoch, train_loader, use_minibatch
from training.models import build_model
from training.models.dpgcn import DPGCN
from training.optim import make_optimizer
from training.splits import Split

logger = logging.getLogger(__name__)

#: Files rank 0 writes into the job's work directory.
RESULT_FILE = "result.pt"
PROGRESS_FILE = "progress.jsonl"


class DistributedError(TrainingError):
    """A distributed training job failed: a rank raised, died, or timed out."""


class StepLoss(nn.Module):
    """The module DDP wraps: its forward runs a loss function on the model,
    ``forward(fn, *args) = fn(model, *args)``, so a step's loss is computed inside DDP's
    forward (which DDP needs to all-reduce that step's gradients) while the epoch functions
    keep their own loss code (:func:`training.loop.batch_loss`,
    :func:`training.minibatch.minibatch_loss`)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, fn: Any, *args: Any) -> Any:
        return fn(self.model, *args)


@dataclass(frozen=True)
class _Job:
    """What every rank receives (pickled once per rank by the spawn)."""

    split: Split
    config: TrainConfig
    world: int
    workdir: Path
    checkpoint_dir: Path | None
    timeout_s: float
    threads: int
    #: Each rank writes its final weights to ``rank-<r>.pt`` (tests, diagnostics).
    save_rank_states: bool


def shard_positions(order: np.ndarray, rank: int, world: int) -> np.ndarray:
    """Rank ``rank``'s positions of ``order``: ``order[rank::world]`` after padding ``order``
    by wrapping around to a multiple of ``world``, so every rank gets the same count."""
    n = len(order)
    size = math.ceil(n / world) if n else 0
    padded = np.resize(order, size * world) if n else order
    return padded[rank::world]


def epoch_seed(seed: int, epoch: int, rank: int | None = None) -> int:
    """The seed of one epoch's draws (on one rank, or shared by all when ``rank`` is None)."""
    key = [seed, epoch] if rank is None else [seed, epoch, rank]
    return int(np.random.SeedSequence(key).generate_state(1, np.uint64)[0] >> 1)


def rank_device(device: torch.device, rank: int) -> torch.device:
    """The device of ``rank``: ``cuda:rank`` when training on CUDA, else the CPU."""
    return torch.device("cuda", rank) if device.type == "cuda" else torch.device("cpu")


def fit_distributed(
    split: Split,
    config: TrainConfig,
    processes: int,
    progress: ProgressFn | None = None,
    checkpoint_dir: Path | None = None,
    timeout_s: float = 600.0,
    workdir: Path | None = None,
    save_rank_states: bool = False,
) -> FitResult:
    """Train ``config.model.name`` on ``split`` in ``processes`` data-parallel ranks (module
    docstring) and return the same :class:`FitResult` as :func:`training.loop.fit`.

    ``processes=1`` is :func:`training.loop.fit`. On CUDA the ranks use ``cuda:0`` …
    ``cuda:N-1``; on the CPU each rank gets ``torch.get_num_threads() // processes`` threads.
    ``workdir`` keeps the job's files (rendezvous, progress, rank 0's result, and with
    ``save_rank_states`` every rank's final weights); default a temporary directory.

    Raises:
        DistributedError: A rank raised or died, or a collective timed out.
        ConfigError: More processes than CUDA devices, or an unknown device.
    """
    if processes < 1:
        raise TrainingError(f"processes must be >= 1, got {processes}")
    if processes == 1:
        return fit(split, config, progress, checkpoint_dir=checkpoint_dir)
    device = select_device(config.device)
    if device.type == "cuda" and processes > torch.cuda.device_count():
        from training.errors import ConfigError

        raise ConfigError(
            f"{processes} processes on CUDA need as many GPUs; this machine has "
            f"{torch.cuda.device_count()}"
        )
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="dpgcn-ddp-") as tmp:
            return fit_distributed(
                split,
                config,
                processes,
                progress,
                checkpoint_dir,
                timeout_s,
                Path(tmp),
                save_rank_states,
            )
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in (RESULT_FILE, PROGRESS_FILE, "rendezvous"):
        (workdir / stale).unlink(missing_ok=True)
    job = _Job(
        split=split,
        config=config,
        world=processes,
        workdir=workdir,
        checkpoint_dir=None if checkpoint_dir is None else Path(checkpoint_dir),
        timeout_s=timeout_s,
        threads=max(1, torch.get_num_threads() // processes),
        save_rank_states=save_rank_states,
    )
    start = time.perf_counter()
    logger.info("%s: %d ranks (%s)", config.model.name, processes, _backend(device))
    context = mp.start_processes(
        _rank_main, args=(job,), nprocs=processes, join=False, start_method="spawn"
    )
    reader = _ProgressReader(workdir / PROGRESS_FILE, progress)
    try:
        while not context.join(timeout=0.2):
            reader.poll()
    except mp.ProcessExitedException as e:
        how = (
            f"was killed by {signal.Signals(-e.exit_code).name}"
            if e.exit_code < 0
            else f"exited with code {e.exit_code}"
        )
        raise DistributedError(
            f"distributed training: rank {e.error_index} {how}; the other ranks were stopped"
        ) from e
    except mp.ProcessRaisedException as e:
        last = [ln for ln in str(e).strip().splitlines() if ln.strip()][-1:]
        raise DistributedError(
            f"distributed training: rank {e.error_index} failed: {' '.join(last)}"
        ) from e
    reader.poll()
    return _result(split, config, device, workdir / RESULT_FILE, start)


def _backend(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


class _ProgressReader:
    """Follows rank 0's progress lines and hands each complete one to ``progress``."""

    def __init__(self, path: Path, progress: ProgressFn | None) -> None:
        self.path, self.progress, self.offset = path, progress, 0

    def poll(self) -> None:
        if self.progress is None or not self.path.is_file():
            return
        with self.path.open("rb") as f:
            f.seek(self.offset)
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1
        self.offset += end
        for line in chunk[:end].splitlines():
            self.progress(json.loads(line))


def _result(
    split: Split, config: TrainConfig, device: torch.device, path: Path, start: float
) -> FitResult:
    """The calling process's :class:`FitResult` from rank 0's result file (and the DDPG
    stage, when the model has one)."""
    with deterministic(config.optim.deterministic):
        payload = torch.load(path, map_location="cpu", weights_only=True)
        seed_everything(config.seed)
        data = build_graph_data(split, device, config.model.history_len)
        model = build_model(config.model.name, data, config).to(device)
        model.load_state_dict(payload["state"])
        result = FitResult(model=model, data=data, config=config, device=device)
        for key in ("best_epoch", "last_epoch", "resumed_from_epoch"):
            setattr(result, key, int(payload[key]))
        result.stopped_at_budget = bool(payload.get("stopped_at_budget", False))
        result.best_val = float(payload["best_val"])
        result.best_val_auc = float(payload["best_val_auc"])
        result.batching = str(payload["batching"])
        result.history = list(payload["history"])
        result.epoch_train_seconds = [float(s) for s in payload["epoch_train_seconds"]]
        if model.has_policy:
            result.policy = train_policy(result, Validator(split, config))
        result.train_seconds = time.perf_counter() - start
    return result


def _rank_main(rank: int, job: _Job) -> None:
    """One rank's process: join the group, train, leave the group."""
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s rank{rank} %(name)s %(message)s")
    torch.set_num_threads(job.threads)
    device = rank_device(select_device(job.config.device), rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    try:
        dist.init_process_group(
            _backend(device),
            init_method=f"file://{job.workdir / 'rendezvous'}",
            rank=rank,
            world_size=job.world,
            timeout=timedelta(seconds=job.timeout_s),
        )
    except RuntimeError as e:  # torch's DistStoreError / "Wait timeout" are RuntimeErrors
        raise DistributedError(
            f"rank {rank}: the {job.world} ranks did not all join within {job.timeout_s:g} s ({e})"
        ) from e
    try:
        with deterministic(job.config.optim.deterministic):
            _train_rank(rank, job, device)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _train_rank(rank: int, job: _Job, device: torch.device) -> None:
    split, config, world = job.split, job.config, job.world
    seed_everything(config.seed)
    data = build_graph_data(split, device, config.model.history_len)
    model = build_model(config.model.name, data, config).to(device)
    if split.protocol == "cold-item" and not model.inductive:
        raise NotInductiveError(
            f"{config.model.name} cannot score items without interactions (inductive = False)"
        )
    if not model.trainable or not any(p.requires_grad for p in model.parameters()):
        raise TrainingError(f"{config.model.name} has no trainable parameters to distribute")
    amp = use_amp(device, config.optim.mixed_precision)
    scaler = make_grad_scaler(device, amp)
    optimizer = make_optimizer(model.parameters(), config.optim.lr, config.optim.weight_decay)
    loader = None
    if use_minibatch(model, len(split.train), config):
        order = np.random.default_rng(config.seed).permutation(len(split.train))
        loader = train_loader(
            split, config, negative_pool(model, split), shard_positions(order, rank, world)
        )
    state = LoopState()
    checkpoints = None
    trainer = Trainer(model, optimizer, scaler, np.random.default_rng(config.seed))
    if job.checkpoint_dir is not None:
        checkpoints = Checkpointer(job.checkpoint_dir, config, fingerprint(split))
        state = checkpoints.restore(trainer, device) or state
    resumed_from = state.epoch
    ddp = DistributedDataParallel(
        StepLoss(model),
        device_ids=[device.index] if device.type == "cuda" else None,
        broadcast_buffers=False,  # every rank builds the same graph buffers
        find_unused_parameters=True,
    )
    validate = Validator(split, config) if rank == 0 else None
    train_seconds: list[float] = []
    progress = (job.workdir / PROGRESS_FILE).open("a") if rank == 0 else None
    budget = TimeBudget(state, config.optim.max_train_seconds, config.model.name, time.perf_counter)
    for epoch in range(state.epoch + 1, 0 if state.done else config.optim.epochs + 1):
        if config.optim.max_train_seconds > 0:  # rank 0 decides, as for early stopping
            fits = [budget.allows_next_epoch() if rank == 0 else True]
            dist.broadcast_object_list(fits, src=0)
            if not fits[0]:
                break
        t0 = time.perf_counter()
        torch.manual_seed(epoch_seed(config.seed, epoch, rank))
        rank_rng = np.random.default_rng(epoch_seed(config.seed, epoch, rank))
        if loader is not None:
            loss = minibatch_epoch(
                cast(DPGCN, model), loader, optimizer, device, scaler, amp, step=ddp
            )
        else:
            shared = np.random.default_rng(epoch_seed(config.seed, epoch))
            order = shard_positions(shared.permutation(len(split.train)), rank, world)
            loss = train_epoch(
                model, split, config, optimizer, rank_rng, device, scaler, amp, order, ddp
            )
        total = torch.tensor([loss], dtype=torch.float64, device=device)
        dist.all_reduce(total)
        loss = float(total) / world
        train_seconds.append(time.perf_counter() - t0)
        state.epoch = epoch
        stop = [False]
        if validate is not None:
            stop[0] = end_epoch(state, model, validate, config, device, loss, epoch, t0)[1]
            if progress is not None:
                info = {"epoch": epoch, "epochs": config.optim.epochs, "loss": loss}
                info.update(state.history[-1])
                progress.write(json.dumps(info) + "\n")
                progress.flush()
            if checkpoints is not None and checkpoints.due() and not stop[0]:
                budget.update()
                checkpoints.save(state, trainer)
        dist.broadcast_object_list(stop, src=0)
        if stop[0]:
            break
    if rank == 0:
        if checkpoints is not None and not state.done:
            state.done = True
            budget.update()
            checkpoints.save(state, trainer)
        best = state.best_state if state.best_state is not None else model.state_dict()
        torch.save(
            {
                "state": {k: v.detach().cpu() for k, v in best.items()},
                "history": state.history,
                "best_epoch": state.best_epoch,
                "last_epoch": state.epoch,
                "best_val": float(state.best) if state.history else float("nan"),
                "best_val_auc": state.best_val_auc,
                "batching": "minibatch" if loader is not None else "full",
                "resumed_from_epoch": resumed_from,
                "epoch_train_seconds": train_seconds,
                "stopped_at_budget": state.stopped_at_budget,
            },
            job.workdir / RESULT_FILE,
        )
    if progress is not None:
        progress.close()
    if job.save_rank_states:
        final = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        torch.save(final, job.workdir / f"rank-{rank}.pt")


__all__ = [
    "DistributedError",
    "StepLoss",
    "epoch_seed",
    "fit_distributed",
    "rank_device",
    "shard_positions",
]
