"""Offline DDPG environment replaying logged feedback from the training split only.

Follows the log-replay simulators of LIRD (Zhao et al. 2018) and DRR (Liu et al. 2018):

* a position is one of a user's training interactions at time index ``t ≥ 1``;
* **state** ``s_t = [u ‖ mean(i_{t−N}, …, i_{t−1})]`` (user vector, mean of the ``N`` previous
  item vectors);
* the **action** ``a`` moves the user vector: ``u' = u + α s a``; the agent recommends the
  ``slate_size`` best-scored items among the candidates — the user's next ``env_window`` logged
  items plus ``env_candidates`` random items;
* **reward** = Σ over the slate of the logged feedback of the item (click 1, purchase 5, …,
  nothing 0, see ``TrainConfig.policy.rewards``) discounted by ``1 / log2(rank + 1)``;
* **next state** appends the logged item ``i_t`` to the history (log replay); the episode ends
  after the user's last training interaction.

Validation and test interactions are never visible here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from training.config import PolicyConfig
from training.inference import mean_history
from training.policy import GaussianNoise, OUNoise, Transitions
from training.splits import Split

logger = logging.getLogger(__name__)


class OfflineEnvironment:
    """Batched one-step environment over logged training interactions."""

    def __init__(
        self,
        split: Split,
        user_vecs: NDArray[np.float32],
        item_vecs: NDArray[np.float32],
        config: PolicyConfig,
        scale: float,
        alpha: float,
        seed: int,
    ) -> None:
        self.split = split
        self.user_vecs = user_vecs
        self.item_vecs = item_vecs
        self.config = config
        self.scale = scale
        self.alpha = alpha
        self.rng = np.random.default_rng(seed)
        indptr = split.history_indptr
        self.start = np.repeat(indptr[:-1], np.diff(indptr))  # first pair index of each pair's user
        self.end = np.repeat(indptr[1:], np.diff(indptr))
        positions = np.arange(len(split.train))
        self.positions = positions[positions > self.start]  # at least one earlier item
        self.items = split.train.col
        self.rewards = split.train.reward
        self.users = split.train.row

    def __len__(self) -> int:
        return len(self.positions)

    def _state(self, pos: NDArray[np.int64]) -> NDArray[np.float32]:
        n = self.config.state_history
        idx = pos[:, None] - np.arange(n, 0, -1)[None, :]
        hist = np.where(idx >= self.start[pos][:, None], self.items[np.maximum(idx, 0)], -1)
        return np.concatenate(
            [self.user_vecs[self.users[pos]], mean_history(self.item_vecs, hist)], axis=1
        )

    def sample(self, batch: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """Random positions and their states."""
        pos = self.positions[self.rng.integers(0, len(self.positions), size=batch)]
        return pos, self._state(pos)

    def step(
        self, pos: NDArray[np.int64], action: NDArray[np.float32]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
        """Reward, next state and done flag of taking ``action`` at ``pos``."""
        cfg = self.config
        w = cfg.env_window
        fut = pos[:, None] + np.arange(w)[None, :]
        valid = fut < self.end[pos][:, None]
        fut_items = np.where(valid, self.items[np.minimum(fut, len(self.items) - 1)], -1)
        fut_rewards = np.where(valid, self.rewards[np.minimum(fut, len(self.items) - 1)], 0.0)
        rand = self.rng.integers(0, self.split.n_items, size=(len(pos), cfg.env_candidates))
        cand = np.concatenate([np.where(valid, fut_items, rand[:, :w]), rand], axis=1)
        # relevance of each candidate: its logged reward if among the next items, else 0
        rel = np.zeros(cand.shape, np.float32)
        for j in range(w):
            match = (cand == fut_items[:, j : j + 1]) & valid[:, j : j + 1]
            rel = np.maximum(rel, match * fut_rewards[:, j : j + 1])
        u = self.user_vecs[self.users[pos]] + self.alpha * self.scale * action
        scores = np.einsum("bd,bcd->bc", u, self.item_vecs[cand])
        k = min(cfg.slate_size, cand.shape[1])
        top = np.argsort(-scores, axis=1)[:, :k]
        gains = np.take_along_axis(rel, top, axis=1)
        # an item shown twice (a random duplicate) earns once: zero repeated candidates' gains
        top_items = np.take_along_axis(cand, top, axis=1)
        sorted_items = np.sort(top_items, axis=1)
        dup = np.zeros_like(top_items, dtype=bool)
        if k > 1:
            dup_sorted = np.zeros_like(sorted_items, dtype=bool)
            dup_sorted[:, 1:] = sorted_items[:, 1:] == sorted_items[:, :-1]
            for r in np.flatnonzero(dup_sorted.any(1)):
                _, first = np.unique(top_items[r], return_index=True)
                dup[r] = True
                dup[r, first] = False
        gains = np.where(dup, 0.0, gains)
        reward = (gains / np.log2(np.arange(2, k + 2))[None, :]).sum(1).astype(np.float32)
        nxt = np.minimum(pos + 1, self.end[pos] - 1)
        done = (pos + 1 >= self.end[pos]).astype(np.float32)
        return reward, self._state(nxt), done

    def rollout(
        self,
        policy_act: Callable[[NDArray[np.float32]], NDArray[np.float32]],
        batch: int,
        explore_noise: GaussianNoise | OUNoise | None,
    ) -> Transitions:
        """Sample a batch of positions, act (plus exploration noise), step: one batch of
        transitions."""
        pos, state = self.sample(batch)
        action = policy_act(state)
        if explore_noise is not None:
            action = np.clip(action + explore_noise.sample(action.shape), -1.0, 1.0)
        reward, next_state, done = self.step(pos, action)
        return Transitions(state, action, reward, next_state, done)
