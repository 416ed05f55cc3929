"""The policy stage's choice of α: one actor pass for every candidate α, the same choice and
validation values as adjusting the user vectors afresh for each α."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from training.config import TrainConfig
from training.inference import NumpyActor
from training.policy_stage import fit_policy, policy_adjuster, recent_items
from training.protocols import EmbeddingScorer, Scorer
from training.splits import Split

GRID = (0.0, 0.1, 0.25, 0.5, 1.0)


def _vectors(split: Split, dim: int = 8) -> tuple[np.ndarray, np.ndarray, None]:
    rng = np.random.default_rng(5)
    user = rng.normal(size=(split.n_users, dim)).astype(np.float32)
    item = rng.normal(size=(split.n_items, dim)).astype(np.float32)
    return user, item, None


def _config(tiny_config: TrainConfig, steps: int, grid: tuple[float, ...]) -> TrainConfig:
    return tiny_config.replace(
        {
            "policy.steps": steps,
            "policy.env_batch": 32,
            "policy.batch_size": 32,
            "policy.actor_hidden": (16,),
            "policy.critic_hidden": (16,),
            "policy.alpha_grid": grid,
        }
    )


def _value(scorer: EmbeddingScorer) -> float:
    """An α-sensitive validation stand-in: the mean score of each user's first ten items."""
    users = np.arange(len(scorer.user))
    return float(scorer.all_items(users)[:, :10].mean())


def test_alpha_selection_matches_adjusting_per_alpha(
    split: Split, tiny_config: TrainConfig
) -> None:
    config = _config(tiny_config, steps=3, grid=GRID)
    user, item, query = _vectors(split)
    seen: list[np.ndarray] = []

    def score(scorer: Scorer) -> float:
        assert isinstance(scorer, EmbeddingScorer)
        seen.append(scorer.user.copy())
        return _value(scorer)

    result = fit_policy(split, (user, item, query), config, torch.device("cpu"), score)
    # the old path: states, actor and adjustment recomputed for each α
    hist = recent_items(split, config.policy.state_history, "val")
    by_alpha: dict[str, float] = {}
    best_alpha, best = 0.0, -np.inf
    for j, alpha in enumerate(sorted(set(GRID) | {0.0})):
        adjusted = policy_adjuster(result.policy, alpha).adjust(user, item, hist)
        np.testing.assert_array_equal(seen[j], adjusted)
        by_alpha[f"{alpha:g}"] = value = _value(EmbeddingScorer(adjusted, item))
        if value > best + 1e-6:
            best_alpha, best = alpha, value
    assert len(seen) == len(GRID)
    assert result.val_by_alpha == by_alpha  # identical values, not close ones
    assert result.alpha == best_alpha and result.policy.alpha == best_alpha
    assert len(set(by_alpha.values())) == len(GRID)  # the stand-in tells the αs apart


@pytest.mark.parametrize(("grid", "calls"), [(GRID, 1), ((0.0,), 0)])
def test_the_actor_runs_once_for_all_alphas(
    split: Split,
    tiny_config: TrainConfig,
    monkeypatch: pytest.MonkeyPatch,
    grid: tuple[float, ...],
    calls: int,
) -> None:
    counted: list[int] = []
    actor_call = NumpyActor.__call__

    def counting(self: NumpyActor, states: Any) -> Any:
        counted.append(len(states))
        return actor_call(self, states)

    monkeypatch.setattr(NumpyActor, "__call__", counting)
    result = fit_policy(
        split,
        _vectors(split),
        _config(tiny_config, steps=0, grid=grid),
        torch.device("cpu"),
        lambda scorer: _value(scorer),  # type: ignore[arg-type]
    )
    assert counted == [split.n_users] * calls
    assert sorted(result.val_by_alpha) == sorted(f"{a:g}" for a in grid)


@pytest.mark.parametrize("metric", ["ndcg@10", "auc"])
def test_validator_selection_equals_the_full_validation_score(
    split: Split, tiny_config: TrainConfig, metric: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from training import loop

    config = tiny_config.replace({"eval.select_metric": metric})
    validate = loop.Validator(split, config)
    user, item, _ = _vectors(split)
    scorer = EmbeddingScorer(user, item)
    expected = validate.score(validate(scorer))
    assert np.isfinite(expected)
    if metric != "auc":  # choosing α on a ranking metric never computes the click AUC
        monkeypatch.setattr(loop, "click_auc", lambda *a: pytest.fail("click AUC computed"))
    assert validate.selection(scorer) == expected
