"""The DDPG decision layer's training stage (paper §3.2–3.3; ``docs/model.md``): actor and
critic trained on a fitted model's frozen vectors in the offline environment, then the
policy's weight α chosen on validation (α = 0, the supervised model, is always a candidate)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from training.config import TrainConfig
from training.dataset import last_items
from training.environment import OfflineEnvironment
from training.inference import NumpyActor, PolicyAdjuster
from training.policy import DDPGPolicy
from training.protocols import EmbeddingScorer, Scorer
from training.splits import Split

logger = logging.getLogger(__name__)


@dataclass
class PolicyResult:
    policy: DDPGPolicy
    alpha: float
    val_by_alpha: dict[str, float]
    history: list[dict[str, float]]


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


def fit_policy(
    split: Split,
    vectors: tuple[np.ndarray, np.ndarray, np.ndarray | None],
    config: TrainConfig,
    device: torch.device,
    score: Callable[[Scorer], float],
) -> PolicyResult:
    """Train actor/critic on the frozen ``(user, item, query)`` vectors in the offline
    environment, then choose α by ``score`` (the validation selection metric of a scorer;
    α = 0, the unchanged model, is always a candidate and wins ties)."""
    user, item, query = vectors
    dim = user.shape[1]
    scale = float(np.linalg.norm(user, axis=1).mean() / math.sqrt(dim)) or 1.0
    cfg = config.policy
    train_alpha = max(cfg.alpha_grid) if max(cfg.alpha_grid) > 0 else 1.0
    policy = DDPGPolicy(
        2 * dim, dim, cfg, seed=config.seed, device=device, alpha=train_alpha, scale=scale
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
    alphas = sorted(set(cfg.alpha_grid) | {0.0})
    adjuster = policy_adjuster(policy, 0.0)
    # The action does not depend on α: the states and the actor run once for all candidates,
    # and not at all when α = 0 is the only one.
    action = None
    if len(alphas) > 1:
        action = adjuster.action(user, item, recent_items(split, cfg.state_history, "val"))
    by_alpha: dict[str, float] = {}
    best_alpha, best = 0.0, -math.inf
    for alpha in alphas:
        adjusted = user if action is None else replace(adjuster, alpha=alpha).apply(user, action)
        value = score(EmbeddingScorer(adjusted, item, query))
        by_alpha[f"{alpha:g}"] = value
        if value > best + 1e-6:
            best_alpha, best = alpha, value
    policy.alpha = best_alpha
    logger.info(
        "DDPG alpha chosen on validation: %g (val %s by alpha %s)",
        best_alpha,
        config.eval.select_metric,
        by_alpha,
    )
    return PolicyResult(policy=policy, alpha=best_alpha, val_by_alpha=by_alpha, history=history)
