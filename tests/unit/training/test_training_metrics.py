from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import log_loss as sk_log_loss
from sklearn.metrics import ndcg_score, roc_auc_score

from training import metrics as M


def test_auc_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    s = np.round(rng.normal(size=500) + y, 1)  # many ties
    assert M.auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert M.auc([1, 0, 1, 0], [0.9, 0.1, 0.4, 0.4]) == pytest.approx(0.875)
    assert math.isnan(M.auc([1, 1], [0.2, 0.3]))


def test_gauc_weights_groups_by_size() -> None:
    y = [1, 0, 1, 0, 0, 1, 1]
    s = [0.9, 0.1, 0.2, 0.8, 0.9, 0.5, 0.5]
    g = [0, 0, 1, 1, 1, 2, 2]  # group 2 has one class only → skipped
    expected = (1.0 * 2 + 0.0 * 3) / 5
    assert M.gauc(y, s, g) == pytest.approx(expected)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gauc_equals_the_size_weighted_mean_of_per_group_auc(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 3000
    g = rng.choice(rng.permutation(10_000)[:400], size=n)  # uneven, unsorted group ids
    y = rng.integers(0, 2, n)
    s = np.round(rng.normal(size=n) + 0.5 * y, 1)  # many ties within groups
    s[rng.random(n) < 0.02] = np.nan
    total = weight = 0.0
    for group in np.unique(g):
        mask = g == group
        value = M.auc(y[mask], s[mask])
        if not math.isnan(value):
            total, weight = total + value * mask.sum(), weight + mask.sum()
    assert M.gauc(y, s, g) == pytest.approx(total / weight, abs=1e-12)
    assert M.gauc(y[g == g[0]], s[g == g[0]], g[g == g[0]]) == pytest.approx(
        M.auc(y[g == g[0]], s[g == g[0]]), nan_ok=True
    )
    assert math.isnan(M.gauc([1, 1, 0], [0.1, 0.2, 0.3], [0, 0, 1]))
    assert math.isnan(M.gauc([], [], []))


def test_log_loss_matches_sklearn() -> None:
    z = np.array([2.0, -1.0, 0.5, -3.0])
    y = np.array([1, 0, 0, 1])
    assert M.log_loss(y, z) == pytest.approx(sk_log_loss(y, 1 / (1 + np.exp(-z))))


def test_relaimpr() -> None:
    assert M.relaimpr(0.771, 0.7) == pytest.approx(((0.271 / 0.2) - 1) * 100)
    assert M.relaimpr(0.7, 0.7) == 0.0


HITS = np.array(
    [
        [0, 1, 0, 1, 0],  # relevant at ranks 2 and 4, 3 relevant in total
        [1, 0, 0, 0, 0],  # rank 1, 1 relevant
        [0, 0, 0, 0, 0],  # none in top 5, 2 relevant
    ],
    dtype=bool,
)
N_REL = np.array([3, 1, 2])


def test_precision_recall_hr_hand_computed() -> None:
    assert M.precision_at_k(HITS, N_REL, 5) == pytest.approx((2 / 5 + 1 / 5 + 0) / 3)
    assert M.precision_at_k(HITS, N_REL, 2) == pytest.approx((1 / 2 + 1 / 2 + 0) / 3)
    assert M.recall_at_k(HITS, N_REL, 5) == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert M.hit_rate_at_k(HITS, N_REL, 1) == pytest.approx(1 / 3)
    assert M.hit_rate_at_k(HITS, N_REL, 5) == pytest.approx(2 / 3)


def test_map_hand_computed() -> None:
    ap0 = (1 / 2 + 2 / 4) / 3
    assert M.map_at_k(HITS, N_REL, 5) == pytest.approx((ap0 + 1.0 + 0.0) / 3)


def test_ndcg_hand_computed_and_vs_sklearn() -> None:
    dcg0 = 1 / math.log2(3) + 1 / math.log2(5)
    idcg0 = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert M.ndcg_at_k(HITS, N_REL, 5) == pytest.approx((dcg0 / idcg0 + 1.0 + 0.0) / 3)
    # single relevant item per user among scored candidates: compare with sklearn
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(50, 30))
    truth = np.zeros_like(scores)
    truth[np.arange(50), rng.integers(0, 30, 50)] = 1
    order = np.argsort(-scores, axis=1)
    hits = np.take_along_axis(truth, order, axis=1).astype(bool)
    for k in (1, 5, 10):
        assert M.ndcg_at_k(hits, np.ones(50), k) == pytest.approx(ndcg_score(truth, scores, k=k))


def test_mrr() -> None:
    assert M.mrr([1, 2, 4, 0]) == pytest.approx((1 + 0.5 + 0.25 + 0) / 4)
    assert M.mrr([np.inf, 1]) == pytest.approx(0.5)


def test_registry_and_report() -> None:
    assert M.get_metric("ndcg") is M.ndcg_at_k
    with pytest.raises(KeyError):
        M.get_metric("nope")
    rep = M.ranking_report(HITS, N_REL, [2, 1, 0], (1, 5))
    assert set(rep) == {f"{n}@{k}" for n in M.RANKING_METRICS for k in (1, 5)} | {"mrr"}
