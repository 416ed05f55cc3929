"""training.online: feedback → DDPG transitions → updates, state save/resume, policy bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from training.config import PolicyConfig
from training.inference import load_policy_adjuster_bytes
from training.online import FeedbackEvent, OnlineLearner, item_actions
from training.policy import DDPGPolicy

D = 4
CFG = PolicyConfig(actor_hidden=(16,), critic_hidden=(16,), batch_size=8, state_history=2)


def make_learner(seed: int = 0) -> OnlineLearner:
    rng = np.random.default_rng(seed)
    policy = DDPGPolicy(2 * D, D, CFG, seed=seed, alpha=0.5, scale=1.0)
    users = np.array(["u0", "u1", "u2"])
    items = np.array(["i0", "i1", "i2", "i3"])
    return OnlineLearner(
        policy,
        users,
        rng.standard_normal((3, D)).astype(np.float32),
        items,
        rng.standard_normal((4, D)).astype(np.float32),
    )


def events() -> list[FeedbackEvent]:
    return [
        FeedbackEvent("u0", "click", "i1", 2.0),
        FeedbackEvent("u0", "view", "i2", 1.0),
        FeedbackEvent("u0", "purchase", "i3", 3.0),
        FeedbackEvent("u1", "search", "", 1.0),
        FeedbackEvent("nobody", "click", "i1", 1.0),
        FeedbackEvent("u1", "click", "missing", 1.0),
    ]


def test_transitions_follow_the_design() -> None:
    learner = make_learner()
    t = learner.transitions(events())
    assert len(t) == 3  # search, unknown user and unknown item give none
    assert t.reward.tolist() == [0.0, 1.0, 5.0]  # in time order: view, click, purchase
    u0, iv = learner.user_vecs[0], learner.item_vecs
    np.testing.assert_allclose(t.state[0], np.concatenate([u0, np.zeros(D)]), atol=1e-6)
    # the view (reward 0) leaves the history alone; the click adds i1
    np.testing.assert_allclose(t.next_state[0], t.state[0])
    np.testing.assert_allclose(t.next_state[1][D:], iv[1], atol=1e-6)
    np.testing.assert_allclose(t.next_state[2][D:], (iv[1] + iv[3]) / 2, atol=1e-6)
    np.testing.assert_allclose(t.action[2], item_actions(iv[3]))
    assert np.abs(t.action).max() == pytest.approx(1.0)
    assert learner.user_history[0].tolist() == [1, 3]
    assert t.done.tolist() == [0.0, 0.0, 0.0]


def test_update_changes_the_actor_and_reports_stats() -> None:
    learner = make_learner()
    before = [p.detach().clone() for p in learner.policy.actor.parameters()]
    stats = learner.update(events(), passes=3)
    assert stats["transitions"] == 3 and stats["reward_mean"] == pytest.approx(2.0)
    assert {"critic_loss", "actor_loss", "q", "buffer", "updates"} <= stats.keys()
    assert learner.updates == 3 and learner.policy.version == 1
    after = list(learner.policy.actor.parameters())
    assert any(not torch.equal(b, a) for b, a in zip(before, after, strict=True))
    assert learner.update([FeedbackEvent("u1", "search", "", 1.0)]) == {
        "transitions": 0.0,
        "reward_mean": 0.0,
    }
    with pytest.raises(ValueError):
        learner.update(events(), passes=0)


def test_state_round_trip_resumes_everything(tmp_path: Path) -> None:
    learner = make_learner()
    learner.update(events(), passes=2)
    arrays: dict[str, Any] = {
        "User.ids": learner.user_ids,
        "User.embedding": learner.user_vecs,
        "Item.ids": learner.item_ids,
        "Item.embedding": learner.item_vecs,
    }
    np.savez(tmp_path / "embeddings.npz", **arrays)
    learner.save_state(tmp_path / "online.pt", meta={"last_id": "5-0"})
    back = OnlineLearner.from_model_dir(tmp_path, tmp_path / "online.pt")
    assert back.meta == {"last_id": "5-0"} and back.updates == 2
    assert len(back.policy.buffer) == 3 and back.policy.version == 1
    np.testing.assert_array_equal(back.user_history, learner.user_history)
    np.testing.assert_array_equal(back.policy.buffer.reward[:3], learner.policy.buffer.reward[:3])
    for a, b in zip(
        learner.policy.critic_target.parameters(),
        back.policy.critic_target.parameters(),
        strict=True,
    ):
        assert torch.equal(a, b)
    assert back.policy.actor_opt.state_dict()["state"].keys() == (
        learner.policy.actor_opt.state_dict()["state"].keys()
    )
    s = back.states(np.array([0, 1]))
    np.testing.assert_allclose(back.policy.act(s), learner.policy.act(s), atol=1e-6)


def test_policy_bytes_are_a_policy_file_serving_reads() -> None:
    learner = make_learner()
    learner.update(events())
    adjuster = load_policy_adjuster_bytes(learner.policy_bytes())
    assert adjuster.alpha == 0.5 and adjuster.version == 1 and adjuster.state_history == 2
    assert adjuster.user_history is not None and adjuster.user_history[0].tolist() == [1, 3]
    s = learner.states(np.array([0, 2]))
    np.testing.assert_allclose(adjuster.actor(s), learner.policy.act(s), atol=1e-5)


def test_mismatched_embeddings_are_refused() -> None:
    policy = DDPGPolicy(2 * D, D, CFG)
    with pytest.raises(ValueError, match="do not fit"):
        OnlineLearner(
            policy,
            np.array(["u"]),
            np.zeros((1, 3), np.float32),
            np.array(["i"]),
            np.zeros((1, 3), np.float32),
        )
