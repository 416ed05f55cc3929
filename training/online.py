r"""Online updates of the DDPG decision layer from live feedback (paper §3.2: "adapt to
changing behaviour without full retraining").

The supervised embeddings stay frozen; only the policy (actor, critic, their targets) learns.
Each feedback event on an item becomes one transition, replaying the log as in
:mod:`training.environment`:

* **state** :math:`s = [\mathbf{u} \,\|\, \frac{1}{N}\sum_{j \le N} \mathbf{i}_j]` — the user's
  vector and the mean vector of their ``N`` most recent positively-rated items;
* **action** the item's direction :math:`a = \mathbf{i} / \lVert \mathbf{i} \rVert_\infty`
  (in :math:`[-1, 1]^D`): the move of the user vector that would have ranked the item first;
* **reward** by event type — view (shown, not clicked) 0, click 1, purchase 5
  (:data:`REWARDS`);
* **next state** appends the item to the history when the reward is positive.

Transitions go into the replay buffer; :meth:`OnlineLearner.update` then runs critic/actor
gradient steps on sampled batches (:meth:`training.policy.DDPGPolicy.update`). The full DDPG
state (networks, targets, optimisers, buffer, users' histories) is saved with
:meth:`OnlineLearner.save_state`; :meth:`OnlineLearner.policy_bytes` gives the bytes of a
``policy.pt`` file that serving loads (``training.inference.load_policy_adjuster``).

Pure torch/numpy: no Neo4j, Celery or Redis here (``workers.online`` feeds it).
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from training.errors import ModelDirError
from training.inference import mean_history
from training.policy import DDPGPolicy, Transitions

logger = logging.getLogger(__name__)

#: Reward of each feedback type; other types (``search``) give no transition.
REWARDS: Mapping[str, float] = {"view": 0.0, "click": 1.0, "purchase": 5.0}
STATE_FORMAT = 1


@dataclass(frozen=True)
class FeedbackEvent:
    """One feedback event as the API records it (``dpgcn.streams.FEEDBACK_FIELDS``)."""

    user_id: str
    type: str
    item_id: str
    ts: float
    event_id: str = ""


def item_actions(item_vecs: NDArray[np.float32]) -> NDArray[np.float32]:
    """Each item's direction scaled into ``[-1, 1]^D`` (unit max-norm): ``[B, D] → [B, D]``."""
    v = np.asarray(item_vecs, np.float32)
    top = np.maximum(np.abs(v).max(axis=-1, keepdims=True), 1e-12)
    return (v / top).astype(np.float32)


class OnlineLearner:
    """Feedback → transitions → DDPG updates, over frozen user/item embeddings.

    Args:
        policy: the DDPG policy to update (loaded from ``policy.pt`` or a saved state).
        user_ids, user_vecs: ``[U]`` ids and ``[U, D]`` vectors of the model version.
        item_ids, item_vecs: ``[I]`` ids and ``[I, D]`` vectors.
        user_history: ``[U, N]`` recent item rows per user (``-1`` padded) or ``None``.
        rewards: reward per feedback type.
    """

    def __init__(
        self,
        policy: DDPGPolicy,
        user_ids: NDArray[np.str_],
        user_vecs: NDArray[np.float32],
        item_ids: NDArray[np.str_],
        item_vecs: NDArray[np.float32],
        user_history: NDArray[np.int64] | None = None,
        rewards: Mapping[str, float] = REWARDS,
    ) -> None:
        if user_vecs.shape[1] != item_vecs.shape[1] or 2 * user_vecs.shape[1] != policy.state_dim:
            raise ValueError(
                f"embeddings of dimension {user_vecs.shape[1]}/{item_vecs.shape[1]} do not fit "
                f"a policy with state size {policy.state_dim}"
            )
        self.policy = policy
        self.user_ids = np.asarray(user_ids).astype(str)
        self.item_ids = np.asarray(item_ids).astype(str)
        self.user_vecs = np.asarray(user_vecs, np.float32)
        self.item_vecs = np.asarray(item_vecs, np.float32)
        self.rewards = dict(rewards)
        n = policy.config.state_history
        if user_history is None:
            user_history = np.full((len(self.user_ids), n), -1, np.int64)
        if user_history.shape != (len(self.user_ids), n):
            raise ValueError(f"user_history must have shape {(len(self.user_ids), n)}")
        self.user_history = np.asarray(user_history, np.int64).copy()
        self._user_index = {u: k for k, u in enumerate(self.user_ids.tolist())}
        #: Gradient-step rounds run so far, and free-form text saved with the state (e.g. the
        #: last stream entry consumed).
        self.updates = 0
        self.meta: dict[str, str] = {}
        self._item_actions: NDArray[np.float32] | None = None
        self._item_index = {i: k for k, i in enumerate(self.item_ids.tolist())}

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_model_dir(
        cls, model_dir: Path, state_path: Path | None = None, seed: int = 0
    ) -> OnlineLearner:
        """The learner of a model directory, resumed from ``state_path`` when it exists, else
        starting from the directory's trained ``policy.pt``."""
        model_dir = Path(model_dir)
        emb_path = model_dir / "embeddings.npz"
        if not emb_path.is_file():
            raise ModelDirError(f"{model_dir} has no embeddings.npz")
        with np.load(emb_path, allow_pickle=False) as z:
            user_ids, user_vecs = z["User.ids"], z["User.embedding"]
            item_ids, item_vecs = z["Item.ids"], z["Item.embedding"]
        if state_path is not None and Path(state_path).is_file():
            return cls._from_state(Path(state_path), user_ids, user_vecs, item_ids, item_vecs, seed)
        policy_path = model_dir / "policy.pt"
        if not policy_path.is_file():
            raise ModelDirError(f"{model_dir} has no policy.pt (a model without DDPG layer)")
        policy = DDPGPolicy.load(policy_path, seed=seed)
        payload = torch.load(policy_path, map_location="cpu", weights_only=True)
        history = payload.get("user_history")
        hist = None if history is None else history.numpy().astype(np.int64)
        return cls(policy, user_ids, user_vecs, item_ids, item_vecs, hist)

    @classmethod
    def _from_state(
        cls,
        path: Path,
        user_ids: NDArray[np.str_],
        user_vecs: NDArray[np.float32],
        item_ids: NDArray[np.str_],
        item_vecs: NDArray[np.float32],
        seed: int,
    ) -> OnlineLearner:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError) as e:
            raise ModelDirError(f"cannot load online state {path}: {e}") from e
        if state.get("format") != STATE_FORMAT:
            raise ModelDirError(f"{path}: unsupported online state format")
        with tempfile.TemporaryDirectory() as tmp:
            policy_file = Path(tmp) / "policy.pt"
            policy_file.write_bytes(state["policy"].numpy().tobytes())
            policy = DDPGPolicy.load(policy_file, seed=seed + int(state["updates"]))
        policy.actor_opt.load_state_dict(state["actor_opt"])
        policy.critic_opt.load_state_dict(state["critic_opt"])
        buf = policy.buffer
        size = int(state["buffer_size"])
        if size:
            for name in ("state", "action", "reward", "next_state", "done"):
                getattr(buf, name)[:size] = state[f"buffer_{name}"].numpy()
        buf.size, buf.position = size, int(state["buffer_position"]) % buf.capacity
        learner = cls(
            policy,
            user_ids,
            user_vecs,
            item_ids,
            item_vecs,
            state["user_history"].numpy().astype(np.int64),
        )
        learner.updates = int(state["updates"])
        learner.meta = {k: str(v) for k, v in state.get("meta", {}).items()}
        return learner

    # ------------------------------------------------------------------ learning
    def states(self, users: NDArray[np.int64]) -> NDArray[np.float32]:
        """Current states of user rows ``[B] → [B, 2D]``."""
        hist = self.user_history[users]
        return np.concatenate(
            [self.user_vecs[users], mean_history(self.item_vecs, hist)], axis=1
        ).astype(np.float32)

    def _state(self, u: int) -> NDArray[np.float32]:
        hist = self.user_history[u]
        recent = hist[hist >= 0]
        mean = self.item_vecs[recent].mean(0) if len(recent) else np.zeros_like(self.user_vecs[u])
        return np.concatenate([self.user_vecs[u], mean]).astype(np.float32)

    def _actions(self) -> NDArray[np.float32]:
        if self._item_actions is None:
            self._item_actions = item_actions(self.item_vecs)
        return self._item_actions

    def transitions(self, events: Iterable[FeedbackEvent]) -> Transitions:
        """Transitions of ``events`` (in time order; unknown users/items and types without a
        reward are skipped). Updates the users' recent-item histories."""
        s, a, r, s2 = [], [], [], []
        actions = self._actions()
        for e in sorted(events, key=lambda e: e.ts):
            reward = self.rewards.get(e.type)
            u = self._user_index.get(e.user_id)
            i = self._item_index.get(e.item_id)
            if reward is None or u is None or i is None:
                continue
            state = self._state(u)
            s.append(state)
            a.append(actions[i])
            r.append(reward)
            if reward > 0:
                hist = self.user_history[u]
                hist[:-1] = hist[1:].copy()
                hist[-1] = i
                state = self._state(u)
            s2.append(state)
        d2 = self.policy.state_dim
        f32 = np.float32
        if not s:
            empty = np.zeros((0, d2), f32)
            none = np.zeros(0, f32)
            return Transitions(empty, np.zeros((0, d2 // 2), f32), none, empty, none)
        return Transitions(
            np.stack(s), np.stack(a), np.asarray(r, f32), np.stack(s2), np.zeros(len(s), f32)
        )

    def update(self, events: Iterable[FeedbackEvent], passes: int = 4) -> dict[str, float]:
        """Add the events' transitions to the replay buffer and run ``passes`` rounds of
        ``updates_per_step`` gradient steps. Returns statistics (transitions, reward_mean,
        critic_loss, actor_loss, q, buffer, updates)."""
        if passes < 1:
            raise ValueError("passes must be at least 1")
        t = self.transitions(events)
        stats: dict[str, float] = {
            "transitions": float(len(t)),
            "reward_mean": float(t.reward.mean()) if len(t) else 0.0,
        }
        if len(t) == 0:
            return stats
        losses: dict[str, float] = {}
        for k in range(passes):
            step = self.policy.update(t if k == 0 else None)
            for key, value in step.items():
                losses[key] = losses.get(key, 0.0) + value / passes
        self.updates += passes
        self.policy.version += 1
        stats.update(losses)
        stats["buffer"] = float(len(self.policy.buffer))
        stats["updates"] = float(self.updates)
        return stats

    # ------------------------------------------------------------------ serving / saving
    def policy_bytes(self) -> bytes:
        """The bytes of a ``policy.pt`` (actor, critic, targets, α, scale, version, and the
        users' current recent items) — what serving loads."""
        payload = self.policy.state_dict()
        payload["user_history"] = torch.as_tensor(self.user_history)
        buf = io.BytesIO()
        torch.save(payload, buf)
        return buf.getvalue()

    def save_state(self, path: Path, meta: Mapping[str, str] | None = None) -> None:
        """Write the full DDPG state (atomically: temp file + rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if meta is not None:
            self.meta = dict(meta)
        buf = self.policy.buffer
        size = len(buf)
        state: dict[str, Any] = {
            "format": STATE_FORMAT,
            "policy": torch.frombuffer(bytearray(self.policy_bytes()), dtype=torch.uint8),
            "actor_opt": self.policy.actor_opt.state_dict(),
            "critic_opt": self.policy.critic_opt.state_dict(),
            "buffer_size": size,
            "buffer_position": buf.position,
            "user_history": torch.as_tensor(self.user_history),
            "updates": self.updates,
            "meta": dict(self.meta),
        }
        for name in ("state", "action", "reward", "next_state", "done"):
            state[f"buffer_{name}"] = torch.as_tensor(getattr(buf, name)[:size].copy())
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)
