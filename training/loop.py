"""The training loop and the DDPG stage.

:func:`fit` trains any registry model on one :class:`~training.splits.Split` (binary
cross-entropy over positives and sampled negatives, paper eq. 7; validation after every epoch; the
best epoch's weights are kept, early stopping on validation — test data is never looked at —
and an optional time budget, :class:`~training.budget.TimeBudget`), full-batch
(:func:`train_epoch`) or in neighbour-sampled mini-batches (:mod:`training.minibatch`). Models
with a decision layer then train their :class:`~training.policy.DDPGPolicy` in the offline
environment (:mod:`training.environment`) and choose the action strength α on validation.
:mod:`training.distributed` runs the same epochs in several data-parallel processes.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch.nn import functional as F

from training.budget import TimeBudget
from training.checkpoint import Checkpointer, LoopState, Trainer, fingerprint
from training.config import TrainConfig
from training.data import ITEM, LED_TO, QUERY, ExportGraph, sample_negatives
from training.dataset import GraphData, build_graph_data
from training.device import (
    autocast,
    deterministic,
    make_grad_scaler,
    seed_everything,
    select_device,
    use_amp,
)
from training.errors import TrainingError
from training.minibatch import minibatch_epoch, train_loader, use_minibatch
from training.models import build_model
from training.models.base import DotEncoding, RecModel
from training.models.dpgcn import DPGCN
from training.optim import optimizer_for
from training.policy_stage import PolicyResult, fit_policy, policy_adjuster, recent_items
from training.protocols import (
    EmbeddingScorer,
    ModelScorer,
    RankingTask,
    Scorer,
    click_auc,
    rank_users,
    ranking_task,
)
from training.splits import Split, eval_candidates, split_interactions

logger = logging.getLogger(__name__)

ProgressFn = Callable[[dict[str, Any]], None]


class NotInductiveError(TrainingError):
    """The model cannot score items it never saw in training (cold-item protocol)."""


@dataclass
class FitResult:
    """A trained model and what happened while training it."""

    model: RecModel
    data: GraphData
    config: TrainConfig
    device: torch.device
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    #: The last epoch trained (early stop or the cap).
    last_epoch: int = 0
    #: Validation ``config.eval.select_metric`` of the best epoch, and the AUC of that epoch.
    best_val: float = float("nan")
    best_val_auc: float = float("nan")
    train_seconds: float = 0.0
    policy: PolicyResult | None = None
    #: ``"full"`` or ``"minibatch"``: how the epochs visited the graph
    #: (``TrainConfig.optim.batching``).
    batching: str = "full"
    #: The checkpointed epoch the fit resumed after (0: it started from scratch).
    resumed_from_epoch: int = 0
    #: Seconds of each epoch's optimisation steps (validation excluded), epochs of this
    #: process only (a resumed fit has none for the epochs before its checkpoint).
    epoch_train_seconds: list[float] = field(default_factory=list)
    #: The time budget (``config.optim.max_train_seconds``) ended the epoch loop: the next
    #: epoch would not have fitted in it.
    stopped_at_budget: bool = False

    @property
    def stopped_at_cap(self) -> bool:
        """The best epoch is the epoch cap: training longer might have helped."""
        return self.config.optim.epochs > 1 and self.best_epoch >= self.config.optim.epochs

    def encoding(self) -> DotEncoding | None:
        """The trained model's dot-product vectors (``None`` for non dot-product models)."""
        self.model.eval()
        with torch.no_grad():
            enc = self.model.encode()
        return self.model.dot_encoding(enc)

    def scorer(self, which: str = "test") -> Scorer:
        """Scoring for evaluation: through the exported vectors and policy for dot-product
        models (exactly what serving does), through the network otherwise."""
        enc = self.encoding()
        if enc is None:
            return ModelScorer(self.model, self.device)
        user, item, query = dot_vectors(enc, self.data)
        if self.policy is not None and self.policy.alpha != 0.0:
            hist = recent_items(self.data.split, self.config.policy.state_history, which)
            user = policy_adjuster(self.policy.policy, self.policy.alpha).adjust(user, item, hist)
        return EmbeddingScorer(user, item, query)


def split_for(graph: ExportGraph, config: TrainConfig, seed: int | None = None) -> Split:
    """The split of ``config.eval.protocol`` for ``seed`` (default ``config.seed``)."""
    return split_interactions(
        graph,
        config.seed if seed is None else seed,
        config.policy.reward_of(),
        config.eval.min_interactions,
        protocol=config.eval.protocol,
        ratios=config.eval.ratios,
        cold_share=config.eval.cold_share,
    )


def dot_vectors(
    enc: DotEncoding, data: GraphData
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """User, item and query vectors as numpy. Queries of models without query vectors get the
    mean vector of the items they led to (zeros when none)."""
    user = enc.user.detach().float().cpu().numpy()
    item = enc.item.detach().float().cpu().numpy()
    query = None if enc.query is None else enc.query.detach().float().cpu().numpy()
    if query is None and data.n_queries > 0:
        e = data.split.graph.edges.get((QUERY, LED_TO, ITEM))
        query = np.zeros((data.n_queries, item.shape[1]), np.float32)
        if e is not None and e.num_edges:
            np.add.at(query, e.index[0], item[e.index[1]])
            counts = np.bincount(e.index[0], minlength=data.n_queries)
            query /= np.maximum(counts, 1)[:, None]
    return user, item, query


def _bce_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed binary cross-entropy of logits (paper eq. 7), in float32."""
    return F.binary_cross_entropy_with_logits(logits.float(), labels, reduction="sum")


def negative_pool(model: RecModel, split: Split) -> np.ndarray | None:
    """The items a model's training negatives are drawn from: every item, except for
    inductive models, which draw only items with training interactions. An item without
    any has no positive to learn from; drawn as a negative, its side-information vector
    (shared with the new items of its category) would only ever be pushed down, and every
    item that enters the catalogue later would rank last."""
    if not model.inductive:
        return None
    trained = np.unique(split.train.col)
    if len(trained) in (0, split.n_items):
        return None
    return trained.astype(np.int64)


def train_epoch(
    model: RecModel,
    split: Split,
    config: TrainConfig,
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
    device: torch.device,
    scaler: torch.amp.GradScaler,
    amp: bool,
    order: np.ndarray | None = None,
    step: Callable[..., torch.Tensor] | None = None,
) -> float:
    """One pass over the training interactions; returns the mean BCE per scored pair.

    ``order`` (rows of ``split.train``) is the sequence of interactions to visit (default: a
    permutation of all of them drawn from ``rng``); distributed training passes each rank's
    shard. ``step(batch_loss, ...)`` computes each step's loss instead of calling
    :func:`batch_loss` directly (distributed training passes its
    ``DistributedDataParallel`` wrapper)."""
    model.train()
    perm = rng.permutation(len(split.train)) if order is None else order
    n = len(perm)
    total, count = 0.0, 0
    searches = split.train_search
    n_batches = max(1, math.ceil(n / config.optim.batch_size))
    q_batch = math.ceil(len(searches) / n_batches) if len(searches) else 0
    q_perm = rng.permutation(len(searches)) if q_batch else None
    pool = negative_pool(model, split)
    for b in range(n_batches):
        idx = perm[b * config.optim.batch_size : (b + 1) * config.optim.batch_size]
        users = split.train.row[idx]
        negs = sample_negatives(
            rng, users, config.optim.num_negatives, split.n_items, split.is_train, pool=pool
        )
        # Positives and their negatives are scored in one call (one gather of the user and
        # item vectors and one scatter in the backward, instead of two of each).
        pair_u = np.concatenate([users, np.repeat(users, config.optim.num_negatives)])
        pair_i = np.concatenate([split.train.col[idx], negs.reshape(-1)])
        queries = None
        if q_perm is not None and config.model.query_loss_weight > 0:
            q_idx = q_perm[b * q_batch : (b + 1) * q_batch]
            if len(q_idx):
                qu = searches.row[q_idx]
                qn = rng.integers(0, split.n_queries, len(q_idx))
                queries = (np.concatenate([qu, qu]), np.concatenate([searches.col[q_idx], qn]))
        with autocast(device, amp):
            args = (pair_u, pair_i, len(idx), queries, config.model.query_loss_weight, device)
            loss = batch_loss(model, *args) if step is None else step(batch_loss, *args)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        total += float(loss.detach()) * len(pair_u)
        count += len(pair_u)
    return total / max(count, 1)


def batch_loss(
    model: RecModel,
    pair_u: np.ndarray,
    pair_i: np.ndarray,
    n_pos: int,
    queries: tuple[np.ndarray, np.ndarray] | None,
    query_weight: float,
    device: torch.device,
) -> torch.Tensor:
    """The loss of one full-batch step: a whole-graph ``encode()``, BCE over the scored pairs
    (the first ``n_pos`` positive, the rest negative) plus the model's penalty, plus
    ``query_weight`` × the BCE of ``queries`` (users, then query rows; first half positive)."""
    labels = torch.zeros(len(pair_u), device=device)
    labels[:n_pos] = 1.0
    enc = model.encode()
    batch_u = torch.as_tensor(pair_u, device=device)
    batch_i = torch.as_tensor(pair_i, device=device)
    logits = model.score(enc, batch_u, batch_i)
    loss = _bce_sum(logits, labels) / len(pair_u)
    penalty = model.penalty(enc, batch_u, batch_i)
    if penalty is not None:
        loss = loss + penalty
    if queries is not None:
        q_logits = model.score_queries(
            enc,
            torch.as_tensor(queries[0], device=device),
            torch.as_tensor(queries[1], device=device),
        )
        if q_logits is not None:
            q_labels = torch.zeros(len(queries[0]), device=device)
            q_labels[: len(queries[0]) // 2] = 1.0
            loss = loss + query_weight * _bce_sum(q_logits, q_labels) / len(queries[0])
    return loss


class Validator:
    """Validation of one split, computed the same way after every epoch of every model:
    the click-prediction AUC and the full-ranking metrics of ``config.eval.select_metric``."""

    def __init__(self, split: Split, config: TrainConfig) -> None:
        self.config = config
        self.users, self.pos, self.neg = eval_candidates(split, "val", config.eval.click_negatives)
        self.task: RankingTask = ranking_task(split, "val", config.eval.max_users, config.seed)
        self.split = split
        sel = config.eval.select_metric
        extra = int(sel.partition("@")[2]) if "@" in sel else 0
        self.ks = tuple(sorted({*config.eval.top_k, *((extra,) if extra else ())}))

    def __call__(self, scorer: Scorer) -> dict[str, float]:
        auc = click_auc(scorer, self.users, self.pos, self.neg)
        return {"val_auc": auc, **self._ranked(scorer)}

    def selection(self, scorer: Scorer) -> float:
        """``score(self(scorer))`` without the metrics the selection does not read."""
        if self.config.eval.select_metric == "auc":
            return self.score({"val_auc": click_auc(scorer, self.users, self.pos, self.neg)})
        return self.score(self._ranked(scorer))

    def _ranked(self, scorer: Scorer) -> dict[str, float]:
        sel = self.config.eval.select_metric
        if sel == "auc" or not len(self.task):
            return {}
        ranks = rank_users(scorer, self.split, self.task, self.ks)
        return {f"val_{sel}": float(np.mean(ranks[sel]))}

    def score(self, values: dict[str, float]) -> float:
        """The selection value (``-inf`` when it could not be computed)."""
        v = values.get(f"val_{self.config.eval.select_metric}", float("nan"))
        return v if math.isfinite(v) else -math.inf


def fit(
    split: Split,
    config: TrainConfig,
    progress: ProgressFn | None = None,
    device: torch.device | None = None,
    checkpoint_dir: Path | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> FitResult:
    """Train ``config.model.name`` on ``split``: supervised epochs (full-batch or neighbour-sampled
    mini-batches, ``config.optim.batching``), then the DDPG stage if any. Deterministic for a seed
    (``config.optim.deterministic``): see ``docs/evaluation.md``. With ``checkpoint_dir`` the epoch
    loop checkpoints there every ``config.optim.checkpoint_interval_s`` seconds and resumes from a
    checkpoint it finds (:mod:`training.checkpoint`, ``docs/training.md``). With
    ``config.optim.max_train_seconds`` the epoch loop keeps to that budget (:class:`TimeBudget`;
    ``FitResult.stopped_at_budget`` says whether it ended the loop), measured on ``clock``
    (epoch seconds too)."""
    with deterministic(config.optim.deterministic):
        return _fit(split, config, progress, device, checkpoint_dir, clock)


def _fit(
    split: Split,
    config: TrainConfig,
    progress: ProgressFn | None,
    device: torch.device | None,
    checkpoint_dir: Path | None,
    clock: Callable[[], float],
) -> FitResult:
    device = device or select_device(config.device)
    seed_everything(config.seed)
    rng = np.random.default_rng(config.seed)
    data = build_graph_data(split, device, config.model.history_len)
    model = build_model(config.model.name, data, config).to(device)
    if split.protocol == "cold-item" and not model.inductive:
        raise NotInductiveError(
            f"{config.model.name} cannot score items without interactions (inductive = False)"
        )
    result = FitResult(model=model, data=data, config=config, device=device)
    start = time.perf_counter()
    validate = Validator(split, config)

    if not model.trainable or not any(p.requires_grad for p in model.parameters()):
        model.fit_statistics(data)
        val = validate(ModelScorer(model, device))
        result.history.append({"epoch": 1, "loss": float("nan"), **val})
        result.best_epoch = result.last_epoch = 1
        result.best_val, result.best_val_auc = validate.score(val), val["val_auc"]
        if progress is not None:
            progress({"epoch": 1, "epochs": 1, "loss": float("nan"), **val})
        result.train_seconds = time.perf_counter() - start
        return result

    amp = use_amp(device, config.optim.mixed_precision)
    scaler = make_grad_scaler(device, amp)
    loader = None
    if use_minibatch(model, len(split.train), config):
        loader = train_loader(split, config, negative_pool(model, split))
    optimizer = optimizer_for(model, config, minibatch=loader is not None)
    result.batching = "minibatch" if loader is not None else "full"
    logger.info(
        "%s: %s epochs (%d training interactions)",
        config.model.name,
        result.batching,
        len(split.train),
    )
    trainer = Trainer(model, optimizer, scaler, rng)
    checkpoints = None
    state = LoopState()
    if checkpoint_dir is not None:
        checkpoints = Checkpointer(checkpoint_dir, config, fingerprint(split))
        state = checkpoints.restore(trainer, device) or state
        result.resumed_from_epoch = state.epoch
    result.history = state.history
    budget = TimeBudget(state, config.optim.max_train_seconds, config.model.name, clock)
    for epoch in range(state.epoch + 1, 0 if state.done else config.optim.epochs + 1):
        if not budget.allows_next_epoch():
            break
        t0 = clock()
        if loader is not None:
            loss = minibatch_epoch(cast(DPGCN, model), loader, optimizer, device, scaler, amp)
        else:
            loss = train_epoch(model, split, config, optimizer, rng, device, scaler, amp)
        result.epoch_train_seconds.append(clock() - t0)
        state.epoch = epoch
        val, stop = end_epoch(state, model, validate, config, device, loss, epoch, t0, clock)
        if progress is not None:
            progress({"epoch": epoch, "epochs": config.optim.epochs, "loss": loss, **val})
        if stop:
            break
        if checkpoints is not None and checkpoints.due():
            budget.update()
            checkpoints.save(state, trainer)
    if checkpoints is not None and not state.done:
        state.done = True
        budget.update()
        checkpoints.save(state, trainer)  # a kill from here on trains no epoch again
    result.last_epoch, result.best_epoch = state.epoch, state.best_epoch
    result.stopped_at_budget = state.stopped_at_budget
    result.best_val_auc = state.best_val_auc
    if state.best_state is not None:
        model.load_state_dict(state.best_state)
    result.best_val = float(state.best) if len(result.history) else float("nan")
    if result.stopped_at_cap:
        logger.warning(
            "%s: best epoch %d is the cap (epochs=%d); raise it",
            config.model.name,
            result.best_epoch,
            config.optim.epochs,
        )
    if model.has_policy:
        result.policy = train_policy(result, validate)
    result.train_seconds = time.perf_counter() - start
    return result


def end_epoch(
    state: LoopState,
    model: RecModel,
    validate: Validator,
    config: TrainConfig,
    device: torch.device,
    loss: float,
    epoch: int,
    t0: float,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[dict[str, float], bool]:
    """The end of a training epoch (one process, or rank 0 of several): validation, the
    history row (``seconds``: ``clock`` since ``t0``), the log line, the best weights so far.
    Returns the validation metrics and ``True`` when early stopping ends the training."""
    val = validate(ModelScorer(model, device))
    secs = clock() - t0
    state.history.append({"epoch": epoch, "loss": loss, **val, "seconds": secs})
    logger.info(
        "%s epoch %d/%d loss=%.4f %s (%.1fs)",
        config.model.name,
        epoch,
        config.optim.epochs,
        loss,
        " ".join(f"{k}={v:.4f}" for k, v in val.items()),
        secs,
    )
    if not math.isfinite(loss):
        raise TrainingError(f"{config.model.name}: loss became {loss} at epoch {epoch}")
    score = validate.score(val)
    if not math.isfinite(score):
        score = -loss
    improved = state.improve(score, epoch, val["val_auc"], model)
    if not improved and config.optim.patience and state.stale >= config.optim.patience:
        logger.info("early stop after epoch %d (best %d)", epoch, state.best_epoch)
        return val, True
    return val, False


def train_policy(result: FitResult, validate: Validator) -> PolicyResult:
    """The DDPG stage (:func:`training.policy_stage.fit_policy`) on the fitted model's frozen
    dot-product vectors, α chosen on ``validate``'s selection metric."""
    enc = result.encoding()
    if enc is None:
        raise TrainingError(f"{result.config.model.name} has a policy but no dot-product vectors")
    user, item, query = dot_vectors(enc, result.data)
    return fit_policy(
        result.data.split,
        (user, item, query),
        result.config,
        result.device,
        validate.selection,
    )
