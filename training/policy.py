"""The DDPG decision layer: replay buffer, exploration noise, target networks, policy updates.

:class:`DDPGPolicy` is the piece an online loop uses: build states with
:func:`training.inference.policy_states`, collect :class:`Transitions` from live feedback, call
:meth:`DDPGPolicy.update` and :meth:`DDPGPolicy.save` a new ``policy.pt`` version. The offline
environment that trains it from logs is :mod:`training.environment`.

State :math:`\\mathbf{s} = [\\mathbf{u} \\,\\|\\, \\frac{1}{N}\\sum_{j \\le N} \\mathbf{i}_j]`
(the user's vector and the mean vector of their ``N`` most recent items); action
:math:`\\mathbf{a} = \\mu(\\mathbf{s}) \\in [-1, 1]^D`; scores
:math:`\\langle \\mathbf{u} + \\alpha s \\mathbf{a}, \\mathbf{i} \\rangle`, where ``scale`` s
is the users' mean vector norm divided by :math:`\\sqrt D` and α is chosen on validation data.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from pydantic import ValidationError
from torch import nn

from training.config import PolicyConfig
from training.errors import ModelDirError
from training.models.actor import Actor
from training.models.critic import Critic

logger = logging.getLogger(__name__)

POLICY_FORMAT = 1


@dataclass
class Transitions:
    """A batch of transitions ``(s, a, r, s', done)`` as float32 numpy arrays."""

    state: NDArray[np.float32]
    action: NDArray[np.float32]
    reward: NDArray[np.float32]
    next_state: NDArray[np.float32]
    done: NDArray[np.float32]

    def __post_init__(self) -> None:
        self.state = np.asarray(self.state, np.float32)
        self.action = np.asarray(self.action, np.float32)
        self.reward = np.asarray(self.reward, np.float32).reshape(-1)
        self.next_state = np.asarray(self.next_state, np.float32)
        self.done = np.asarray(self.done, np.float32).reshape(-1)
        n = len(self.state)
        if not (
            len(self.action) == len(self.reward) == len(self.next_state) == len(self.done) == n
        ):
            raise ValueError("transition arrays must have the same length")

    def __len__(self) -> int:
        return len(self.state)


class ReplayBuffer:
    """Fixed-capacity ring buffer of transitions with uniform random sampling."""

    def __init__(self, capacity: int, state_dim: int, action_dim: int) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self.state = np.zeros((capacity, state_dim), np.float32)
        self.action = np.zeros((capacity, action_dim), np.float32)
        self.reward = np.zeros(capacity, np.float32)
        self.next_state = np.zeros((capacity, state_dim), np.float32)
        self.done = np.zeros(capacity, np.float32)
        self.position = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, t: Transitions) -> None:
        """Append a batch; the oldest entries are overwritten once full."""
        n = len(t)
        if n > self.capacity:
            t = Transitions(*(a[-self.capacity :] for a in dataclasses.astuple(t)))
            n = self.capacity
        idx = (self.position + np.arange(n)) % self.capacity
        self.state[idx], self.action[idx], self.reward[idx] = t.state, t.action, t.reward
        self.next_state[idx], self.done[idx] = t.next_state, t.done
        self.position = int((self.position + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> Transitions:
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = rng.integers(0, self.size, size=batch_size)
        return Transitions(
            self.state[idx],
            self.action[idx],
            self.reward[idx],
            self.next_state[idx],
            self.done[idx],
        )


class GaussianNoise:
    """Independent :math:`\\mathcal{N}(0, \\sigma^2)` exploration noise."""

    def __init__(self, sigma: float, rng: np.random.Generator) -> None:
        self.sigma = sigma
        self.rng = rng

    def sample(self, shape: tuple[int, ...]) -> NDArray[np.float32]:
        return (self.rng.standard_normal(shape) * self.sigma).astype(np.float32)

    def reset(self) -> None:
        """Stateless."""


class OUNoise:
    """Ornstein–Uhlenbeck noise :math:`x \\leftarrow x + \\theta(\\mu - x) + \\sigma \\epsilon`
    (Lillicrap et al. 2016), one process per row of the requested shape."""

    def __init__(
        self, sigma: float, rng: np.random.Generator, theta: float = 0.15, mu: float = 0.0
    ) -> None:
        self.sigma, self.theta, self.mu, self.rng = sigma, theta, mu, rng
        self.x: NDArray[np.float32] | None = None

    def sample(self, shape: tuple[int, ...]) -> NDArray[np.float32]:
        if self.x is None or self.x.shape != shape:
            self.x = np.full(shape, self.mu, np.float32)
        dx = self.theta * (self.mu - self.x) + self.sigma * self.rng.standard_normal(shape)
        self.x = (self.x + dx).astype(np.float32)
        return self.x

    def reset(self) -> None:
        self.x = None


def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak averaging :math:`\\theta' \\leftarrow \\tau\\theta + (1 - \\tau)\\theta'`."""
    with torch.no_grad():
        for t, s in zip(target.parameters(), source.parameters(), strict=True):
            t.mul_(1.0 - tau).add_(s, alpha=tau)


class DDPGPolicy:
    """Actor–critic with target networks, replay buffer and exploration noise (paper §3.2).

    Args:
        state_dim: state size (``2 · D``: user vector and mean recent item vector).
        action_dim: action size ``D``.
        config: DDPG hyper-parameters.
        seed: seeds the networks' initialisation, the buffer sampling and the noise.
        alpha, scale: how strongly the action moves the user vector (see module docstring).
    """

    def __init__(
        self,
        state_dim: int,
        action_dim: int,
        config: PolicyConfig,
        seed: int = 0,
        device: torch.device | None = None,
        alpha: float = 1.0,
        scale: float = 1.0,
    ) -> None:
        self.state_dim = state_dim
        self.action_dim = action_dim
        self.config = config
        self.device = device or torch.device("cpu")
        self.alpha = alpha
        self.scale = scale
        self.version = 0
        self.rng = np.random.default_rng(seed)
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        self.actor = Actor(state_dim, action_dim, list(config.actor_hidden)).to(self.device)
        self.critic = Critic(state_dim, action_dim, list(config.critic_hidden)).to(self.device)
        torch.random.set_rng_state(gen_state)
        self.actor_target = copy.deepcopy(self.actor)
        self.critic_target = copy.deepcopy(self.critic)
        for p in (*self.actor_target.parameters(), *self.critic_target.parameters()):
            p.requires_grad_(False)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=config.actor_lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=config.critic_lr)
        self.buffer = ReplayBuffer(config.buffer_size, state_dim, action_dim)
        self.noise: GaussianNoise | OUNoise = (
            OUNoise(config.noise_sigma, self.rng)
            if config.noise == "ou"
            else GaussianNoise(config.noise_sigma, self.rng)
        )

    def _t(self, a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=torch.float32, device=self.device)

    def act(self, state: np.ndarray, explore: bool = False) -> NDArray[np.float32]:
        """Action(s) for state(s) ``[S]`` or ``[B, S]``; with exploration noise if asked."""
        s = np.asarray(state, np.float32)
        single = s.ndim == 1
        with torch.no_grad():
            a = self.actor(self._t(s[None] if single else s)).cpu().numpy()
        if explore:
            a = np.clip(a + self.noise.sample(a.shape), -1.0, 1.0)
        return a[0] if single else a

    def update(self, transitions: Transitions | None = None) -> dict[str, float]:
        """Add ``transitions`` to the replay buffer, then run ``updates_per_step`` gradient
        steps on sampled batches: critic towards the target (eq. 4), actor up the critic
        (eq. 5), then soft target updates. Returns the mean losses and Q value."""
        if transitions is not None and len(transitions):
            if transitions.state.shape[1] != self.state_dim:
                raise ValueError(f"states must have {self.state_dim} columns")
            self.buffer.add(transitions)
        if len(self.buffer) == 0:
            return {}
        stats = {"critic_loss": 0.0, "actor_loss": 0.0, "q": 0.0}
        steps = max(1, self.config.updates_per_step)
        for _ in range(steps):
            b = self.buffer.sample(min(self.config.batch_size, len(self.buffer)), self.rng)
            s, a, r = self._t(b.state), self._t(b.action), self._t(b.reward)
            s2, d = self._t(b.next_state), self._t(b.done)
            with torch.no_grad():
                y = r + self.config.gamma * (1.0 - d) * self.critic_target(
                    s2, self.actor_target(s2)
                )
            q = self.critic(s, a)
            critic_loss = nn.functional.mse_loss(q, y)
            self.critic_opt.zero_grad()
            critic_loss.backward()
            self.critic_opt.step()
            actor_loss = -self.critic(s, self.actor(s)).mean()
            self.actor_opt.zero_grad()
            actor_loss.backward()
            self.actor_opt.step()
            soft_update(self.critic_target, self.critic, self.config.tau)
            soft_update(self.actor_target, self.actor, self.config.tau)
            stats["critic_loss"] += float(critic_loss.detach()) / steps
            stats["actor_loss"] += float(actor_loss.detach()) / steps
            stats["q"] += float(q.detach().mean()) / steps
        return stats

    def state_dict(self) -> dict[str, Any]:
        return {
            "format": POLICY_FORMAT,
            "version": self.version,
            "state_dim": self.state_dim,
            "action_dim": self.action_dim,
            "alpha": float(self.alpha),
            "scale": float(self.scale),
            "config": self.config.model_dump(),
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "actor_target": self.actor_target.state_dict(),
            "critic_target": self.critic_target.state_dict(),
        }

    def save(self, path: Path, extra: dict[str, Any] | None = None) -> None:
        """Write ``policy.pt`` (tensors and plain values only; loadable with
        ``weights_only=True``). ``extra`` adds entries such as the users' recent items."""
        payload = self.state_dict()
        payload.update(extra or {})
        torch.save(payload, Path(path))

    @classmethod
    def load(cls, path: Path, device: torch.device | None = None, seed: int = 0) -> DDPGPolicy:
        try:
            payload = torch.load(Path(path), map_location="cpu", weights_only=True)
        except (OSError, RuntimeError) as e:
            raise ModelDirError(f"cannot load policy {path}: {e}") from e
        if payload.get("format") != POLICY_FORMAT:
            raise ModelDirError(f"{path}: unsupported policy format {payload.get('format')!r}")
        try:
            config = PolicyConfig.model_validate(payload["config"])
        except ValidationError as e:
            raise ModelDirError(f"{path}: invalid policy settings: {e}") from e
        policy = cls(
            payload["state_dim"],
            payload["action_dim"],
            config,
            seed=seed,
            device=device,
            alpha=payload["alpha"],
            scale=payload["scale"],
        )
        policy.version = int(payload.get("version", 0))
        policy.actor.load_state_dict(payload["actor"])
        policy.critic.load_state_dict(payload["critic"])
        policy.actor_target.load_state_dict(payload["actor_target"])
        policy.critic_target.load_state_dict(payload["critic_target"])
        return policy

    def actor_weights(self) -> list[tuple[NDArray[np.float32], NDArray[np.float32]]]:
        """The actor's linear layers as numpy ``(W [out, in], b [out])`` pairs (for serving)."""
        return [
            (m.weight.detach().cpu().numpy(), m.bias.detach().cpu().numpy())
            for m in self.actor.net
            if isinstance(m, nn.Linear)
        ]
