"""DDPG pieces: soft update, replay buffer, noise, policy update/save/load, environment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from training.config import PolicyConfig
from training.environment import OfflineEnvironment
from training.inference import load_policy_adjuster, policy_states
from training.policy import (
    DDPGPolicy,
    GaussianNoise,
    OUNoise,
    ReplayBuffer,
    Transitions,
    soft_update,
)
from training.splits import Split


def _transitions(n: int, s: int = 4, a: int = 2, start: float = 0.0) -> Transitions:
    base = start + np.arange(n, dtype=np.float32)
    return Transitions(
        state=np.repeat(base[:, None], s, 1),
        action=np.repeat(base[:, None], a, 1),
        reward=base,
        next_state=np.repeat(base[:, None], s, 1) + 1,
        done=np.zeros(n),
    )


def test_soft_update_is_polyak_average() -> None:
    target, source = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    t0 = target.weight.detach().clone()
    soft_update(target, source, 0.25)
    assert torch.allclose(target.weight, 0.75 * t0 + 0.25 * source.weight)
    soft_update(target, source, 1.0)
    assert torch.allclose(target.weight, source.weight)


def test_replay_buffer_wraps_and_samples() -> None:
    buf = ReplayBuffer(capacity=5, state_dim=4, action_dim=2)
    buf.add(_transitions(3))
    assert len(buf) == 3
    buf.add(_transitions(4, start=10))  # 7 added, capacity 5: oldest two overwritten
    assert len(buf) == 5
    assert sorted(buf.reward.tolist()) == [2.0, 10.0, 11.0, 12.0, 13.0]
    batch = buf.sample(8, np.random.default_rng(0))
    assert batch.state.shape == (8, 4) and batch.action.shape == (8, 2)
    assert set(batch.reward.tolist()) <= {2.0, 10.0, 11.0, 12.0, 13.0}
    assert np.allclose(batch.next_state, batch.state + 1)  # rows stay aligned
    big = ReplayBuffer(capacity=3, state_dim=4, action_dim=2)
    big.add(_transitions(10))
    assert sorted(big.reward.tolist()) == [7.0, 8.0, 9.0]
    with pytest.raises(ValueError):
        ReplayBuffer(3, 4, 2).sample(1, np.random.default_rng(0))


def test_noise_processes() -> None:
    g = GaussianNoise(0.5, np.random.default_rng(0)).sample((2000, 3))
    assert abs(g.std() - 0.5) < 0.05
    ou = OUNoise(0.2, np.random.default_rng(0))
    a, b = ou.sample((4, 3)), ou.sample((4, 3))
    assert a.shape == (4, 3) and not np.allclose(a, b)
    ou.reset()
    assert ou.x is None


def test_policy_learns_a_rewarded_direction(tmp_path: Path) -> None:
    """One-step bandit: reward = first action coordinate. The actor must learn to raise it."""
    cfg = PolicyConfig(
        actor_hidden=(16,),
        critic_hidden=(16,),
        actor_lr=1e-2,
        critic_lr=1e-2,
        gamma=0.0,
        batch_size=64,
        tau=0.1,
    )
    policy = DDPGPolicy(4, 2, cfg, seed=0)
    rng = np.random.default_rng(0)
    before = policy.act(np.zeros(4, np.float32))[0]
    for _ in range(150):
        s = rng.normal(size=(64, 4)).astype(np.float32)
        a = policy.act(s, explore=True)
        stats = policy.update(Transitions(s, a, a[:, 0], s, np.ones(64)))
    assert set(stats) == {"critic_loss", "actor_loss", "q"}
    assert all(np.isfinite(v) for v in stats.values())
    after = policy.act(rng.normal(size=(32, 4)).astype(np.float32))[:, 0]
    assert after.mean() > before + 0.3

    policy.version = 3
    policy.alpha, policy.scale = 0.5, 2.0
    policy.save(tmp_path / "policy.pt")
    loaded = DDPGPolicy.load(tmp_path / "policy.pt")
    s = rng.normal(size=(5, 4)).astype(np.float32)
    assert np.allclose(loaded.act(s), policy.act(s), atol=1e-6)
    assert loaded.version == 3 and loaded.alpha == 0.5 and loaded.scale == 2.0
    # the numpy actor used at serving time matches the torch actor
    adjuster = load_policy_adjuster(tmp_path / "policy.pt")
    assert np.allclose(adjuster.actor(s), policy.act(s), atol=1e-5)


def test_update_rejects_wrong_state_size() -> None:
    policy = DDPGPolicy(4, 2, PolicyConfig(actor_hidden=(8,), critic_hidden=(8,)))
    with pytest.raises(ValueError):
        policy.update(_transitions(3, s=5))


def test_environment_rewards_moving_towards_the_next_items(split: Split) -> None:
    rng = np.random.default_rng(0)
    dim = 6
    users = rng.normal(size=(split.n_users, dim)).astype(np.float32)
    items = rng.normal(size=(split.n_items, dim)).astype(np.float32)
    cfg = PolicyConfig(env_candidates=20, slate_size=3, env_window=2, state_history=3)
    env = OfflineEnvironment(split, users, items, cfg, scale=1.0, alpha=1.0, seed=0)
    pos, state = env.sample(256)
    assert state.shape == (256, 2 * dim)
    # the state is [user vector ‖ mean of the previous items]
    assert np.allclose(state[:, :dim], users[split.train.row[pos]])
    nxt = items[split.train.col[pos]]
    toward = np.clip(nxt * 10, -1, 1)
    r_toward, next_state, done = env.step(pos, toward)
    r_away, _, _ = env.step(pos, -toward)
    assert r_toward.mean() > r_away.mean()
    assert next_state.shape == state.shape and set(np.unique(done)) <= {0.0, 1.0}
    hist = np.full((2, 3), -1)
    hist[0, 2] = 0
    st = policy_states(users[:2], items, hist)
    assert np.allclose(st[0, dim:], items[0]) and np.allclose(st[1, dim:], 0)
