"""Training loop, DDPG stage and model-directory writer.

:func:`fit` trains any registry model on one :class:`~training.data.Split` (binary
cross-entropy over positives and sampled negatives, paper eq. 7; validation AUC after every
epoch; the best epoch's weights are kept, early stopping on validation — test data is never
looked at). Models with a decision layer then train their :class:`~training.policy.DDPGPolicy`
in the offline environment (:mod:`training.environment`) and choose the action strength α on
validation AUC.

:func:`train_from_export` is the pipeline entry point: export dir in, model dir out
(``docs/export-format.md``), written to a temporary directory and renamed into place.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch.nn import functional as F

from training.checkpoint import Checkpointer, LoopState, Trainer, fingerprint
from training.config import TrainConfig
from training.data import (
    ITEM,
    LED_TO,
    QUERY,
    USER,
    ExportGraph,
    Split,
    eval_candidates,
    load_export,
    sample_negatives,
    split_interactions,
)
from training.dataset import GraphData, build_graph_data, last_items
from training.device import (
    autocast,
    deterministic,
    make_grad_scaler,
    seed_everything,
    select_device,
    use_amp,
)
from training.environment import OfflineEnvironment
from training.errors import TrainingError
from training.inference import NumpyActor, PolicyAdjuster
from training.metrics import FloatVector
from training.minibatch import minibatch_epoch, train_loader, use_minibatch
from training.models import build_model
from training.models.base import DotEncoding, RecModel
from training.models.dpgcn import DPGCN
from training.policy import DDPGPolicy
from training.protocols import (
    EmbeddingScorer,
    ModelScorer,
    RankingTask,
    Scorer,
    click_prediction,
    query_suggestion,
    rank_users,
    ranking_task,
    sampled_ranking,
)

logger = logging.getLogger(__name__)

ProgressFn = Callable[[dict[str, Any]], None]


class NotInductiveError(TrainingError):
    """The model cannot score items it never saw in training (cold-item protocol)."""


@dataclass
class PolicyResult:
    policy: DDPGPolicy
    alpha: float
    val_by_alpha: dict[str, float]
    history: list[dict[str, float]]


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
    #: Validation ``config.select_metric`` of the best epoch, and the AUC of that epoch.
    best_val: float = float("nan")
    best_val_auc: float = float("nan")
    train_seconds: float = 0.0
    policy: PolicyResult | None = None
    #: ``"full"`` or ``"minibatch"``: how the epochs visited the graph (``TrainConfig.batching``).
    batching: str = "full"
    #: The checkpointed epoch the fit resumed after (0: it started from scratch).
    resumed_from_epoch: int = 0
    #: Seconds of each epoch's optimisation steps (validation excluded), epochs of this
    #: process only (a resumed fit has none for the epochs before its checkpoint).
    epoch_train_seconds: list[float] = field(default_factory=list)

    @property
    def stopped_at_cap(self) -> bool:
        """The best epoch is the epoch cap: training longer might have helped."""
        return self.config.epochs > 1 and self.best_epoch >= self.config.epochs

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
            hist = recent_items(self.data.split, self.config.ddpg.state_history, which)
            user = policy_adjuster(self.policy.policy, self.policy.alpha).adjust(user, item, hist)
        return EmbeddingScorer(user, item, query)


def split_for(graph: ExportGraph, config: TrainConfig, seed: int | None = None) -> Split:
    """The split of ``config.protocol`` for ``seed`` (default ``config.seed``)."""
    return split_interactions(
        graph,
        config.seed if seed is None else seed,
        config.reward_of(),
        config.min_interactions,
        protocol=config.protocol,
        ratios=config.ratios,
        cold_share=config.cold_share,
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


def recent_items(split: Split, n: int, which: str) -> np.ndarray:
    """``[U, n]`` most recent items per user (``-1`` padded) visible when scoring ``which``:
    training items for validation, plus the validation item for test, plus the test item for
    serving."""
    include = {"val": (), "test": (split.val,), "serve": (split.val, split.test)}[which]
    return last_items(split, n, -1, include)


def policy_adjuster(policy: DDPGPolicy, alpha: float) -> PolicyAdjuster:
    """The numpy form of ``policy`` at strength ``alpha`` (what serving runs)."""
    return PolicyAdjuster(
        actor=NumpyActor(policy.actor_weights()),
        alpha=alpha,
        scale=policy.scale,
        state_history=policy.config.state_history,
    )


def make_optimizer(
    params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    """Adam, with the fused kernel (one call for all parameters) where torch supports it."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError):  # pragma: no cover - old torch or unsupported device
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


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
    n_batches = max(1, math.ceil(n / config.batch_size))
    q_batch = math.ceil(len(searches) / n_batches) if len(searches) else 0
    q_perm = rng.permutation(len(searches)) if q_batch else None
    pool = negative_pool(model, split)
    for b in range(n_batches):
        idx = perm[b * config.batch_size : (b + 1) * config.batch_size]
        users = split.train.row[idx]
        negs = sample_negatives(
            rng, users, config.num_negatives, split.n_items, split.is_train, pool=pool
        )
        # Positives and their negatives are scored in one call (one gather of the user and
        # item vectors and one scatter in the backward, instead of two of each).
        pair_u = np.concatenate([users, np.repeat(users, config.num_negatives)])
        pair_i = np.concatenate([split.train.col[idx], negs.reshape(-1)])
        queries = None
        if q_perm is not None and config.query_loss_weight > 0:
            q_idx = q_perm[b * q_batch : (b + 1) * q_batch]
            if len(q_idx):
                qu = searches.row[q_idx]
                qn = rng.integers(0, split.n_queries, len(q_idx))
                queries = (np.concatenate([qu, qu]), np.concatenate([searches.col[q_idx], qn]))
        with autocast(device, amp):
            args = (pair_u, pair_i, len(idx), queries, config.query_loss_weight, device)
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
    the click-prediction AUC and the full-ranking metrics of ``config.select_metric``."""

    def __init__(self, split: Split, config: TrainConfig) -> None:
        self.config = config
        self.users, self.pos, self.neg = eval_candidates(split, "val", config.click_negatives)
        self.task: RankingTask = ranking_task(split, "val", config.eval_max_users, config.seed)
        self.split = split
        sel = config.select_metric
        extra = int(sel.partition("@")[2]) if "@" in sel else 0
        self.ks = tuple(sorted({*config.top_k, *((extra,) if extra else ())}))

    def __call__(self, scorer: Scorer) -> dict[str, float]:
        out = {"val_auc": click_prediction(scorer, self.users, self.pos, self.neg)["auc"]}
        if self.config.select_metric != "auc" and len(self.task):
            ranks = rank_users(scorer, self.split, self.task, self.ks)
            out[f"val_{self.config.select_metric}"] = float(
                np.mean(ranks[self.config.select_metric])
            )
        return out

    def score(self, values: dict[str, float]) -> float:
        """The selection value (``-inf`` when it could not be computed)."""
        v = values.get(f"val_{self.config.select_metric}", float("nan"))
        return v if math.isfinite(v) else -math.inf


def fit(
    split: Split,
    config: TrainConfig,
    progress: ProgressFn | None = None,
    device: torch.device | None = None,
    checkpoint_dir: Path | None = None,
) -> FitResult:
    """Train ``config.model`` on ``split``: supervised epochs (full-batch or neighbour-sampled
    mini-batches, ``config.batching``), then the DDPG stage if any. Deterministic for a seed
    (``config.deterministic``): see ``docs/evaluation.md``. With ``checkpoint_dir`` the epoch
    loop checkpoints there every ``config.checkpoint_interval_s`` seconds and resumes from a
    checkpoint it finds (:mod:`training.checkpoint`, ``docs/training.md``)."""
    with deterministic(config.deterministic):
        return _fit(split, config, progress, device, checkpoint_dir)


def _fit(
    split: Split,
    config: TrainConfig,
    progress: ProgressFn | None,
    device: torch.device | None,
    checkpoint_dir: Path | None,
) -> FitResult:
    device = device or select_device(config.device)
    seed_everything(config.seed)
    rng = np.random.default_rng(config.seed)
    data = build_graph_data(split, device, config.history_len)
    model = build_model(config.model, data, config).to(device)
    if split.protocol == "cold-item" and not model.inductive:
        raise NotInductiveError(
            f"{config.model} cannot score items without interactions (inductive = False)"
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

    amp = use_amp(device, config.mixed_precision)
    scaler = make_grad_scaler(device, amp)
    optimizer = make_optimizer(model.parameters(), config.lr, config.weight_decay)
    loader = None
    if use_minibatch(model, len(split.train), config):
        loader = train_loader(split, config, negative_pool(model, split))
    result.batching = "minibatch" if loader is not None else "full"
    logger.info(
        "%s: %s epochs (%d training interactions)", config.model, result.batching, len(split.train)
    )
    trainer = Trainer(model, optimizer, scaler, rng)
    checkpoints = None
    state = LoopState()
    if checkpoint_dir is not None:
        checkpoints = Checkpointer(checkpoint_dir, config, fingerprint(split))
        state = checkpoints.restore(trainer, device) or state
        result.resumed_from_epoch = state.epoch
    result.history = state.history
    for epoch in range(state.epoch + 1, 0 if state.done else config.epochs + 1):
        t0 = time.perf_counter()
        if loader is not None:
            loss = minibatch_epoch(cast(DPGCN, model), loader, optimizer, device, scaler, amp)
        else:
            loss = train_epoch(model, split, config, optimizer, rng, device, scaler, amp)
        trained = time.perf_counter() - t0
        val = validate(ModelScorer(model, device))
        secs = time.perf_counter() - t0
        state.history.append({"epoch": epoch, "loss": loss, **val, "seconds": secs})
        result.epoch_train_seconds.append(trained)
        state.epoch = epoch
        logger.info(
            "%s epoch %d/%d loss=%.4f %s (%.1fs)",
            config.model,
            epoch,
            config.epochs,
            loss,
            " ".join(f"{k}={v:.4f}" for k, v in val.items()),
            secs,
        )
        if progress is not None:
            progress({"epoch": epoch, "epochs": config.epochs, "loss": loss, **val})
        if not math.isfinite(loss):
            raise TrainingError(f"{config.model}: loss became {loss} at epoch {epoch}")
        score = validate.score(val)
        if not math.isfinite(score):
            score = -loss
        improved = state.improve(score, epoch, val["val_auc"], model)
        if not improved and config.patience and state.stale >= config.patience:
            logger.info("early stop after epoch %d (best %d)", epoch, state.best_epoch)
            break
        if checkpoints is not None and checkpoints.due():
            checkpoints.save(state, trainer)
    if checkpoints is not None and not state.done:
        state.done = True
        checkpoints.save(state, trainer)  # a kill from here on trains no epoch again
    result.last_epoch, result.best_epoch = state.epoch, state.best_epoch
    result.best_val_auc = state.best_val_auc
    if state.best_state is not None:
        model.load_state_dict(state.best_state)
    result.best_val = float(state.best) if len(result.history) else float("nan")
    if result.stopped_at_cap:
        logger.warning(
            "%s: best epoch %d is the cap (epochs=%d); raise it",
            config.model,
            result.best_epoch,
            config.epochs,
        )
    if model.has_policy:
        result.policy = train_policy(result, validate)
    result.train_seconds = time.perf_counter() - start
    return result


def train_policy(result: FitResult, validate: Validator) -> PolicyResult:
    """DDPG stage: train actor/critic on the frozen vectors in the offline environment, then
    choose α on the validation selection metric (α = 0, the unchanged model, is always a
    candidate and wins ties)."""
    config, split = result.config, result.data.split
    enc = result.encoding()
    if enc is None:
        raise TrainingError(f"{config.model} has a policy but no dot-product vectors")
    user, item, query = dot_vectors(enc, result.data)
    dim = user.shape[1]
    scale = float(np.linalg.norm(user, axis=1).mean() / math.sqrt(dim)) or 1.0
    cfg = config.ddpg
    train_alpha = max(cfg.alpha_grid) if max(cfg.alpha_grid) > 0 else 1.0
    policy = DDPGPolicy(
        2 * dim, dim, cfg, seed=config.seed, device=result.device, alpha=train_alpha, scale=scale
    )
    env = OfflineEnvironment(split, user, item, cfg, scale, train_alpha, seed=config.seed)
    history: list[dict[str, float]] = []
    if len(env) and cfg.steps > 0:
        for step in range(1, cfg.steps + 1):
            batch = env.rollout(policy.act, cfg.env_batch, policy.noise)
            stats = policy.update(batch)
            stats["reward"] = float(batch.reward.mean())
            stats["step"] = step
            history.append(stats)
        # Reward of the learned (noise-free) policy against no action, on fresh positions.
        pos, state = env.sample(min(4096, 16 * cfg.env_batch))
        r_policy = env.step(pos, policy.act(state))[0].mean()
        r_zero = env.step(pos, np.zeros((len(pos), dim), np.float32))[0].mean()
        logger.info("DDPG offline reward: policy %.4f vs no action %.4f", r_policy, r_zero)
        history.append({"eval_reward_policy": float(r_policy), "eval_reward_none": float(r_zero)})
    hist = recent_items(split, cfg.state_history, "val")
    by_alpha: dict[str, float] = {}
    best_alpha, best = 0.0, -math.inf
    for alpha in sorted(set(cfg.alpha_grid) | {0.0}):
        adjusted = policy_adjuster(policy, alpha).adjust(user, item, hist)
        value = validate.score(validate(EmbeddingScorer(adjusted, item, query)))
        by_alpha[f"{alpha:g}"] = value
        if value > best + 1e-6:
            best_alpha, best = alpha, value
    policy.alpha = best_alpha
    logger.info(
        "DDPG alpha chosen on validation: %g (val %s by alpha %s)",
        best_alpha,
        config.select_metric,
        by_alpha,
    )
    return PolicyResult(policy=policy, alpha=best_alpha, val_by_alpha=by_alpha, history=history)


def evaluate_fit(
    result: FitResult, which: str = "test", per_user: dict[str, FloatVector] | None = None
) -> dict[str, float]:
    """All protocols on the ``which`` split ("val" or "test") of a fitted model."""
    return evaluate_scorer(
        result.scorer(which),
        result.data.split,
        result.config,
        which,
        result.model.trainable,
        per_user,
    )


def evaluate_scorer(
    scorer: Scorer,
    split: Split,
    config: TrainConfig,
    which: str = "test",
    logits: bool = True,
    per_user: dict[str, FloatVector] | None = None,
) -> dict[str, float]:
    """All protocols on the ``which`` split of any scorer (a fitted model, or the planted
    oracle of a synthetic export): the same candidates, users and cut-offs for every scorer of
    one split. ``logits=False`` leaves out the log loss (scores that are not logits). When
    ``per_user`` is given it receives the full-ranking metrics per ranked user (key
    ``"users"``: the user rows), for bootstrap intervals."""
    users, pos, negs = eval_candidates(split, which, config.sampled_candidates - 1)
    out: dict[str, float] = {}
    out.update(click_prediction(scorer, users, pos, negs[:, : config.click_negatives]))
    if not logits:
        del out["logloss"]  # counts and similarities are not logits
    sampled = sampled_ranking(scorer, users, pos, negs, config.top_k)
    out.update({f"sampled_{k}": v for k, v in sampled.items()})
    task = ranking_task(split, which, config.eval_max_users, config.seed)
    ranks = rank_users(scorer, split, task, config.top_k) if len(task) else {}
    out.update({k: float(np.mean(v)) for k, v in ranks.items()})
    out["ranked_users"] = float(len(task))
    if per_user is not None:
        per_user.update(ranks)
        per_user["users"] = task.users.astype(np.float64)
    for k, v in query_suggestion(scorer, split, which, config.top_k).items():
        out[f"query_{k}"] = v
    return out


# ---------------------------------------------------------------------------- model directory
def write_model_dir(result: FitResult, out_dir: Path, metrics: dict[str, Any]) -> None:
    """Write the model directory atomically: temp dir in the same parent, then rename."""
    enc = serving_encoding(result)
    if enc is None:
        raise TrainingError(
            f"model {result.config.model!r} is not a dot-product model and cannot be served "
            "from embeddings; use training.evaluate for it"
        )
    graph, split = result.data.split.graph, result.data.split
    user, item, query = dot_vectors(enc, result.data)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        arrays: dict[str, np.ndarray] = {
            "User.ids": graph.ids.get(USER, np.zeros(0, str)),
            "User.embedding": user.astype(np.float32),
            "Item.ids": graph.ids.get(ITEM, np.zeros(0, str)),
            "Item.embedding": item.astype(np.float32),
        }
        if query is not None and split.n_queries > 0:
            arrays["Query.ids"] = graph.ids[QUERY]
            arrays["Query.embedding"] = query.astype(np.float32)
        save_npz(tmp / "embeddings.npz", arrays)
        if USER in graph.x:
            save_npz(
                tmp / "user_features.npz", {"User.ids": arrays["User.ids"], "User.x": graph.x[USER]}
            )
        keys = result.model.state_keys(result.data)
        if keys is not None:  # lets new nodes reuse the trained rows (dpgcn.transfer_state)
            save_npz(tmp / "node_keys.npz", keys)
        (tmp / "train_config.json").write_text(result.config.to_json())
        (tmp / "metrics.json").write_text(json.dumps(_jsonable(metrics), indent=2))
        torch.save(
            {
                "format": 1,
                "model": result.config.model,
                "config": result.config.to_dict(),
                "state_dict": {k: v.detach().cpu() for k, v in result.model.state_dict().items()},
            },
            tmp / "model.pt",
        )
        if result.policy is not None:
            hist = recent_items(split, result.config.ddpg.state_history, "serve")
            result.policy.policy.save(
                tmp / "policy.pt", extra={"user_history": torch.as_tensor(hist)}
            )
        if out_dir.exists():
            old = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
            out_dir.rename(old)
            tmp.rename(out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def serving_encoding(result: FitResult) -> DotEncoding | None:
    """Vectors for serving: the trained weights propagated over the *complete* graph (the
    validation and test interactions and searches included), so the newest behaviour shapes
    the exported user vectors. Metrics stay those of the held-out protocol."""
    if result.encoding() is None:
        return None
    split = result.data.split
    full = split_interactions(split.graph, split.seed, result.config.reward_of(), 2**62)
    result.model.use_graph(build_graph_data(full, result.device, result.config.history_len))
    try:
        return result.encoding()
    finally:
        result.model.use_graph(result.data)


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez`` of named arrays (keys such as ``User.ids`` are not identifiers)."""
    np.savez(path, **arrays)  # type: ignore[arg-type]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float | np.floating):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def load_checkpoint(path: Path) -> tuple[TrainConfig, dict[str, torch.Tensor]]:
    """Read ``model.pt``: the TrainConfig it was trained with and its state dict."""
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    return TrainConfig.from_dict(payload["config"]), payload["state_dict"]


def train_from_export(
    export_dir: Path,
    out_dir: Path,
    config: TrainConfig,
    progress: ProgressFn | None = None,
    checkpoint_dir: Path | None = None,
) -> dict[str, Any]:
    """Train ``config.model`` on an export directory and write a model directory.

    With ``checkpoint_dir`` training checkpoints there and resumes from a checkpoint it finds
    (:func:`fit`); the checkpoint is deleted once the model directory is written. With
    ``config.processes`` > 1 the epochs run in that many data-parallel ranks
    (:func:`training.distributed.fit_distributed`, one per GPU on CUDA).

    Calls ``progress({"epoch", "epochs", "loss", "val_auc"})`` after every epoch. Returns the
    metrics written to ``metrics.json`` (validation and test metrics of the leave-one-out
    protocol, per-epoch history, DDPG stage summary, timings).
    """
    start = time.perf_counter()
    graph = load_export(Path(export_dir))
    split = split_for(graph, config)
    if len(split.train) == 0:
        raise TrainingError(f"{export_dir} has no User → Item interactions to train on")
    if config.processes > 1:
        from training.distributed import fit_distributed  # imports this module

        result = fit_distributed(split, config, config.processes, progress, checkpoint_dir)
    else:
        result = fit(split, config, progress, checkpoint_dir=checkpoint_dir)
    metrics: dict[str, Any] = {
        "model": config.model,
        "device": str(result.device),
        "batching": result.batching,
        "processes": config.processes,
        "resumed_from_epoch": result.resumed_from_epoch,
        "best_epoch": result.best_epoch,
        "last_epoch": result.last_epoch,
        "stopped_at_cap": result.stopped_at_cap,
        "select_metric": config.select_metric,
        "val": evaluate_fit(result, "val"),
        "test": evaluate_fit(result, "test"),
        "history": result.history,
        "train_seconds": result.train_seconds,
        "counts": {
            "users": split.n_users,
            "items": split.n_items,
            "queries": split.n_queries,
            "train": len(split.train),
            "val": len(split.val),
            "test": len(split.test),
        },
    }
    if result.policy is not None:
        metrics["policy"] = {
            "alpha": result.policy.alpha,
            "scale": result.policy.policy.scale,
            "val_by_alpha": result.policy.val_by_alpha,
            "final": result.policy.history[-1] if result.policy.history else {},
        }
    metrics["total_seconds"] = time.perf_counter() - start
    write_model_dir(result, Path(out_dir), metrics)
    if checkpoint_dir is not None:
        Checkpointer(checkpoint_dir, config, fingerprint(split)).remove()
    logger.info(
        "trained %s in %.1fs: val auc %.4f, test auc %.4f -> %s",
        config.model,
        metrics["total_seconds"],
        metrics["val"].get("auc", float("nan")),
        metrics["test"].get("auc", float("nan")),
        out_dir,
    )
    return _jsonable(metrics)
