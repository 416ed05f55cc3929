"""Issue 16: the ratio and cold-item protocols and their metric definitions, checked against
values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from export_factory import write_random_export

from training.config import TrainConfig
from training.data import CATEGORY, IN_CATEGORY, ITEM, LED_TO, QUERY, USER, load_export
from training.loop import NotInductiveError, fit
from training.metrics import bootstrap_ci, paired_bootstrap, relaimpr
from training.protocols import RankingTask, rank_users
from training.splits import ratio_counts, split_interactions


@pytest.mark.parametrize(
    ("total", "expected"),
    [(10, [8, 1, 1]), (20, [16, 2, 2]), (5, [3, 1, 1]), (3, [1, 1, 1]), (2, [1, 0, 1])],
)
def test_ratio_counts_follow_recbole(total: int, expected: list[int]) -> None:
    # e.g. 5: int(0.5) = 0 for val and test, each gets one taken from train (0 < 0.5 < 1)
    assert ratio_counts(total, (0.8, 0.1, 0.1)) == expected


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return load_export(
        write_random_export(tmp_path_factory.mktemp("p") / "g", interactions_per_user=20, seed=5)
    )


def _keys(rows: np.ndarray, cols: np.ndarray) -> set[tuple[int, int]]:
    return set(zip(rows.tolist(), cols.tolist(), strict=True))


@pytest.mark.parametrize("protocol", ["ratio-random", "ratio-temporal"])
def test_ratio_split_partitions_each_user(graph, protocol: str) -> None:  # type: ignore[no-untyped-def]
    s = split_interactions(graph, 0, {}, protocol=protocol)
    train, val, test = (_keys(p.row, p.col) for p in (s.train, s.val, s.test))
    assert not (train & val) and not (train & test) and not (val & test)
    total = np.bincount(np.concatenate([s.train.row, s.val.row, s.test.row]), minlength=s.n_users)
    for u in np.flatnonzero(total >= 3):
        expect = ratio_counts(int(total[u]), (0.8, 0.1, 0.1))
        got = [int((p.row == u).sum()) for p in (s.train, s.val, s.test)]
        assert got == expect
    if protocol == "ratio-temporal":  # every test interaction is at least as late as training
        for u in np.unique(s.test.row):
            assert s.test.time[s.test.row == u].min() >= s.train.time[s.train.row == u].max()
    else:  # random order: another seed holds out other interactions
        other = split_interactions(graph, 1, {}, protocol=protocol)
        assert _keys(other.test.row, other.test.col) != test


def test_cold_item_split_removes_every_interaction_of_the_cold_items(graph) -> None:  # type: ignore[no-untyped-def]
    s = split_interactions(graph, 0, {}, protocol="cold-item", cold_share=0.2)
    cold = set(s.cold_items.tolist()) | set(s.cold_val_items.tolist())
    assert len(s.cold_items) == len(s.cold_val_items) > 0
    assert set(s.test.col.tolist()) <= set(s.cold_items.tolist())
    assert not cold & set(s.train.col.tolist())
    for et, e in s.train_edges.items():
        if et[2] == ITEM and et[0] in (USER, QUERY):
            assert not cold & set(e.index[1].tolist()), et
    # side information stays: the cold items keep their categories
    cats = s.train_edges[(ITEM, IN_CATEGORY, CATEGORY)]
    assert cold & set(cats.index[0].tolist())
    assert (QUERY, LED_TO, ITEM) in s.train_edges


class FixedScorer:
    """Scores from a fixed matrix (rows = users)."""

    def __init__(self, scores: np.ndarray) -> None:
        self.scores = scores

    def all_items(self, users: np.ndarray) -> np.ndarray:
        return self.scores[users]


class NoHistory:
    """The split fields :func:`rank_users` reads: no training items."""

    def user_history(self, user: int) -> np.ndarray:
        return np.zeros(0, np.int64)


def test_rank_users_matches_hand_computed_values() -> None:
    # user 0 ranks items 0..5 by score: 5 (0.9), 1 (0.8), 3 (0.7, tie with 4), 4 (0.7), 0, 2
    # relevant {3, 2}: item 3 ties with non-relevant 4 and is put after it: rank 4; item 2 is
    # last: rank 6. Item 1 is excluded (e.g. a validation item): ranks become 3 and 5.
    scores = np.array([[0.1, 0.8, 0.0, 0.7, 0.7, 0.9]])
    task = RankingTask(
        users=np.array([0]),
        relevant_indptr=np.array([0, 2]),
        relevant=np.array([3, 2]),
        exclude_indptr=np.array([0, 1]),
        exclude=np.array([1]),
    )
    out = rank_users(FixedScorer(scores), NoHistory(), task, (2, 3, 5))  # type: ignore[arg-type]
    assert out["hr@2"][0] == 0.0 and out["hr@3"][0] == 1.0
    assert out["recall@3"][0] == 0.5 and out["recall@5"][0] == 1.0  # hits / |held-out| = 2
    assert out["precision@5"][0] == pytest.approx(2 / 5)
    idcg2 = 1 + 1 / math.log2(3)  # ideal: min(2, K) relevant items on top
    assert out["ndcg@3"][0] == pytest.approx((1 / math.log2(4)) / idcg2)
    assert out["ndcg@5"][0] == pytest.approx((1 / math.log2(4) + 1 / math.log2(6)) / idcg2)
    assert out["map@5"][0] == pytest.approx((1 / 3 + 2 / 5) / 2)
    assert out["mrr"][0] == pytest.approx(1 / 3)


def test_rank_users_caps_the_ideal_at_k() -> None:
    # three relevant items ranked 1, 2, 3: NDCG@2 is 1 (ideal list of min(3, 2) = 2 items)
    scores = np.array([[0.9, 0.8, 0.7, 0.1]])
    task = RankingTask(
        np.array([0]), np.array([0, 3]), np.array([0, 1, 2]), np.array([0, 0]), np.zeros(0, int)
    )
    out = rank_users(FixedScorer(scores), NoHistory(), task, (2,))  # type: ignore[arg-type]
    assert out["ndcg@2"][0] == pytest.approx(1.0)
    assert out["recall@2"][0] == pytest.approx(2 / 3)


def test_bootstrap_intervals_and_paired_test() -> None:
    lo, hi = bootstrap_ci(np.full(50, 0.25))
    assert lo == hi == pytest.approx(0.25)
    rng = np.random.default_rng(0)
    v = rng.random(400)
    lo, hi = bootstrap_ci(v)
    assert lo < v.mean() < hi and hi - lo < 0.1
    same = paired_bootstrap(v, v)
    assert same["diff"] == 0.0 and same["lo"] <= 0.0 <= same["hi"]  # a tie
    better = paired_bootstrap(v + 0.1, v)
    assert better["lo"] == pytest.approx(0.1) and better["p"] == 0.0


def test_relaimpr_not_defined_for_a_base_at_or_below_chance() -> None:
    assert math.isnan(relaimpr(0.8, 0.5)) and math.isnan(relaimpr(0.8, 0.4))
    assert relaimpr(0.8, 0.7) == pytest.approx(50.0)


def test_cold_item_refuses_models_that_cannot_score_cold_items(graph) -> None:  # type: ignore[no-untyped-def]
    cfg = TrainConfig().replace(
        {
            "model.name": "popularity",
            "eval.protocol": "cold-item",
            "device": "cpu",
            "optim.epochs": 1,
        }
    )
    s = split_interactions(graph, 0, {}, protocol="cold-item")
    with pytest.raises(NotInductiveError):
        fit(s, cfg)


def _search_split(n_users: int, n_queries: int):  # type: ignore[no-untyped-def]
    """A stand-in split: user u searched query u % n_queries in training and query
    (u + 1) % n_queries in the test."""
    from types import SimpleNamespace

    from training.data import Pairs

    users = np.arange(n_users, dtype=np.int64)

    def pairs(cols: np.ndarray) -> Pairs:
        return Pairs(users, cols.astype(np.int64), np.zeros(n_users), np.ones(n_users, np.float32))

    return SimpleNamespace(
        n_queries=n_queries,
        train_search=pairs(users % n_queries),
        val_search=Pairs.empty(),
        test_search=pairs((users + 1) % n_queries),
    )


class _QueryScorer:
    """Scores query q for user u as -(q - u - 1) mod n: the held-out query ranks first."""

    def __init__(self, n_queries: int) -> None:
        self.n = n_queries
        self.asked: list[int] = []

    def queries(self, users: np.ndarray) -> np.ndarray:
        self.asked.extend(users.tolist())
        q = np.arange(self.n)
        return -((q[None, :] - users[:, None] - 1) % self.n).astype(np.float64)


def test_query_suggestion_ranks_at_most_max_users_users_searches() -> None:
    from training.protocols import query_suggestion

    split = _search_split(50, 7)
    every = _QueryScorer(7)
    assert query_suggestion(every, split, "test", (5,))["mrr"] == pytest.approx(1.0)
    assert sorted(every.asked) == list(range(50))
    capped = _QueryScorer(7)
    out = query_suggestion(capped, split, "test", (5,), max_users=10, seed=3)
    assert out["mrr"] == pytest.approx(1.0)
    assert len(capped.asked) == 10 and len(set(capped.asked)) == 10
    again = _QueryScorer(7)
    query_suggestion(again, split, "test", (5,), max_users=10, seed=3)
    assert again.asked == capped.asked  # the same users for the same seed
    assert query_suggestion(_QueryScorer(7), split, "test", (5,), max_users=50)["mrr"] == 1.0


def test_capped_users_is_the_seeded_sample_both_capped_protocols_rank(graph) -> None:  # type: ignore[no-untyped-def]
    from training.protocols import (
        QUERY_STREAM,
        RANKING_STREAM,
        capped_users,
        query_suggestion,
        ranking_task,
    )

    users = np.arange(0, 200, 2, dtype=np.int64)
    assert capped_users(users, None, 0, RANKING_STREAM) is users
    assert capped_users(users, 100, 0, RANKING_STREAM) is users
    picked = capped_users(users, 10, 3, RANKING_STREAM)
    expected = np.sort(np.random.default_rng([3, 4242]).choice(users, 10, replace=False))
    np.testing.assert_array_equal(picked, expected)  # the sample the protocols always drew
    assert len(np.unique(picked)) == 10 and np.isin(picked, users).all()
    assert (np.diff(picked) > 0).all()
    np.testing.assert_array_equal(capped_users(users, 10, 3, RANKING_STREAM), picked)
    assert not np.array_equal(capped_users(users, 10, 3, QUERY_STREAM), picked)
    assert not np.array_equal(capped_users(users, 10, 4, RANKING_STREAM), picked)
    # the callers rank exactly that sample
    split = split_interactions(graph, 0, {})
    task = ranking_task(split, "val", 7, seed=3)
    np.testing.assert_array_equal(
        task.users, capped_users(np.unique(split.val.row), 7, 3, RANKING_STREAM)
    )
    searches = _search_split(50, 7)
    scorer = _QueryScorer(7)
    query_suggestion(scorer, searches, "test", (5,), max_users=10, seed=3)
    np.testing.assert_array_equal(
        scorer.asked, capped_users(np.arange(50, dtype=np.int64), 10, 3, QUERY_STREAM)
    )


def test_click_auc_is_click_predictions_auc() -> None:
    from training.metrics import auc
    from training.protocols import EmbeddingScorer, click_auc, click_prediction

    rng = np.random.default_rng(2)
    scorer = EmbeddingScorer(
        rng.normal(size=(30, 4)).astype(np.float32), rng.normal(size=(50, 4)).astype(np.float32)
    )
    users = rng.integers(0, 30, 200)
    pos, neg = rng.integers(0, 50, 200), rng.integers(0, 50, (200, 4))
    value = click_auc(scorer, users, pos, neg)
    assert value == click_prediction(scorer, users, pos, neg)["auc"]
    s_pos = np.einsum("bd,bd->b", scorer.user[users], scorer.item[pos])
    s_neg = np.einsum("bd,bcd->bc", scorer.user[users], scorer.item[neg])
    labels = np.concatenate([np.ones(200, bool), np.zeros(800, bool)])
    assert value == pytest.approx(auc(labels, np.concatenate([s_pos, s_neg.ravel()])))
    assert math.isnan(click_auc(scorer, users[:0], pos[:0], neg[:0]))
