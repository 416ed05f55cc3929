"""rank_users counts the candidates above each relevant item instead of sorting each user's
scores, in the scorer's precision: the same metrics as sorting the float64 scores, ties, NaN,
infinite scores, repeated relevant items and both sides of COUNT_LIMIT included."""

from __future__ import annotations

import numpy as np
import pytest

from training.metrics import FloatVector, ranking_per_user
from training.protocols import COUNT_LIMIT, RankingTask, Scorer, rank_users


class _Scores:
    def __init__(self, scores: np.ndarray) -> None:
        self.scores = scores

    def all_items(self, users: np.ndarray) -> np.ndarray:
        """A view of the scorer's own array (``users`` consecutive)."""
        assert (np.diff(users) == 1).all()
        return self.scores[users[0] : users[-1] + 1]


class _History:
    def __init__(self, items: list[np.ndarray]) -> None:
        self.items = items

    def user_history(self, user: int) -> np.ndarray:
        return self.items[user]


def _by_sorting(
    scorer: _Scores, split: _History, task: RankingTask, ks: tuple[int, ...]
) -> dict[str, FloatVector]:
    """rank_users as it was: float64 scores, each user's non-relevant scores sorted."""
    width, n = max(ks), len(task)
    hits = np.zeros((n, width), dtype=bool)
    n_rel = np.zeros(n, dtype=np.int64)
    first = np.full(n, np.inf)
    scores = scorer.all_items(task.users).astype(np.float64)
    for b in range(n):
        row = scores[b]
        row[split.user_history(int(task.users[b]))] = -np.inf
        row[task.exclude_of(b)] = -np.inf
        rel = task.relevant_of(b)
        if not len(rel):
            continue
        is_rel = np.zeros(len(row), dtype=bool)
        is_rel[rel] = True
        others = np.sort(row[~is_rel])
        s_rel = row[rel]
        above = len(others) - np.searchsorted(others, s_rel, "left")
        order = np.lexsort((rel, -s_rel))
        before = np.empty(len(rel), dtype=np.int64)
        before[order] = np.arange(len(rel))
        ranks = above + before + 1
        n_rel[b], first[b] = len(rel), ranks.min()
        hits[b, ranks[ranks <= width] - 1] = True
    return ranking_per_user(hits, n_rel, first, ks)


def _csr(lists: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    indptr = np.concatenate([[0], np.cumsum([len(x) for x in lists])]).astype(np.int64)
    return indptr, np.concatenate(lists).astype(np.int64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_counting_ranks_like_sorting(dtype: type) -> None:
    rng = np.random.default_rng(11)
    n_users, n_items = 120, 300
    # few distinct values: many ties, between relevant items and with the others
    scores = rng.integers(0, 12, size=(n_users, n_items)).astype(dtype) / 4
    scores[rng.random(scores.shape) < 0.01] = np.nan
    scores[rng.random(scores.shape) < 0.01] = np.inf
    scores[rng.random(scores.shape) < 0.01] = -np.inf
    sizes = rng.choice([0, 1, 1, 2, 5, COUNT_LIMIT, COUNT_LIMIT + 1, 60], size=n_users)
    relevant = [rng.integers(0, n_items, size=k) for k in sizes]  # repeats included
    exclude = [rng.integers(0, n_items, size=rng.integers(0, 4)) for _ in range(n_users)]
    history = [rng.integers(0, n_items, size=rng.integers(0, 30)) for _ in range(n_users)]
    task = RankingTask(np.arange(n_users), *_csr(relevant), *_csr(exclude))
    split = _History(history)
    ks = (1, 5, 10, 20)
    kept = scores.copy()
    scorer = _Scores(scores)
    got = rank_users(scorer, split, task, ks, batch_size=32)  # type: ignore[arg-type]
    want = _by_sorting(scorer, split, task, ks)
    assert got.keys() == want.keys()
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    assert np.nanmax(want["ndcg@20"]) > 0 and np.nanmin(want["ndcg@20"]) < 1
    np.testing.assert_array_equal(scores, kept)  # the scorer's array is not masked in place


def test_scores_are_not_masked_in_the_scorers_array() -> None:
    scores = np.array([[0.5, 0.9, 0.1, 0.3]], np.float32)
    kept = scores.copy()
    task = RankingTask(
        np.array([0]), np.array([0, 1]), np.array([2]), np.array([0, 1]), np.array([1])
    )
    scorer: Scorer = _Scores(scores)  # type: ignore[assignment]
    out = rank_users(scorer, _History([np.array([0])]), task, (2,))  # type: ignore[arg-type]
    np.testing.assert_array_equal(scores, kept)
    assert out["mrr"][0] == pytest.approx(1 / 2)  # items 0 and 1 masked: only item 3 above
