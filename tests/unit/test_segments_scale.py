"""Segments at scale (training.segments.cluster_users): the candidate k are fitted on a seeded
sample of users, the chosen k once on all users from the sample's centres."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

from training import segments
from training.segments import (
    SegmentConfig,
    SegmentError,
    adjusted_rand,
    cluster_users,
    membership_scores,
    normalize_rows,
)


def planted(per: int, k: int = 3, dim: int = 16, spread: float = 0.05, seed: int = 0):  # type: ignore[no-untyped-def]
    """``k`` well separated blobs of ``per`` points each, shuffled; (points, planted labels)."""
    rng = np.random.default_rng(seed)
    centres = normalize_rows(rng.normal(0, 1, (k, dim)))
    truth = rng.permutation(np.repeat(np.arange(k), per))
    return centres[truth] + rng.normal(0, spread, (k * per, dim)), truth


def spy(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, bool]]:
    """Records (rows, k, started from given centres) of every k-means fit."""
    calls: list[tuple[int, int, bool]] = []
    real = segments._kmeans

    def recording(
        x: np.ndarray, k: int, config: SegmentConfig, init: np.ndarray | None = None
    ) -> Any:
        calls.append((len(x), k, init is not None))
        return real(x, k, config, init)

    monkeypatch.setattr(segments, "_kmeans", recording)
    return calls


def old_cluster_users(x: np.ndarray, ks: list[int], n_init: int = 10) -> tuple[Any, ...]:
    """What cluster_users computed before the sample (k-means on all users for every k; k by
    silhouette), restated with scikit-learn: (k, labels, centres, silhouette by k)."""
    xn = normalize_rows(x)
    fits = {k: KMeans(n_clusters=k, n_init=n_init, random_state=0).fit(xn) for k in ks}
    by_k = {
        k: round(float(silhouette_score(xn, f.labels_, sample_size=len(xn), random_state=0)), 4)
        for k, f in fits.items()
    }
    k = max(ks, key=lambda c: (by_k[c], -c))
    labels, centres = segments._order_by_size(
        fits[k].labels_.astype(np.int64), fits[k].cluster_centers_
    )
    return k, labels, centres, by_k


@pytest.mark.parametrize("fit_sample", [300, 1000])
def test_below_the_sample_size_the_result_is_the_all_users_one(
    monkeypatch: pytest.MonkeyPatch, fit_sample: int
) -> None:
    x, _ = planted(100, k=3, dim=8, spread=0.3, seed=4)  # 300 users, overlapping blobs
    calls = spy(monkeypatch)
    config = SegmentConfig(k_min=2, k_max=5, criterion="silhouette", fit_sample=fit_sample)
    seg = cluster_users(x, config)
    k, labels, centres, by_k = old_cluster_users(x, [2, 3, 4, 5])
    assert seg.k == k and seg.silhouette_by_k == by_k and seg.silhouette == by_k[k]
    assert np.array_equal(seg.labels, labels)
    assert np.array_equal(seg.centres, centres)
    assert np.array_equal(seg.scores, membership_scores(normalize_rows(x), centres, labels))
    assert seg.fit_users == 300
    assert calls == [(300, k, False) for k in range(2, 6)]  # no second fit


def test_planted_clusters_larger_than_the_sample_are_found(monkeypatch: pytest.MonkeyPatch) -> None:
    x, truth = planted(30_000)  # 90,000 users in 16 dimensions
    calls = spy(monkeypatch)
    config = SegmentConfig(k_min=2, k_max=6, n_init=3, fit_sample=5_000)
    seg = cluster_users(x, config)
    assert seg.k == 3 and seg.criterion == "eigengap" and seg.fit_users == 5_000
    assert adjusted_rand(truth, seg.labels) == pytest.approx(1.0)
    assert len(seg.labels) == len(seg.scores) == 90_000
    # The candidates saw the sample only; one fit of the chosen k saw everyone.
    assert calls[:-1] == [(5_000, k, False) for k in range(2, 7)]
    assert calls[-1] == (90_000, 3, True)


def test_fixed_k_is_fitted_on_the_sample_then_once_on_all(monkeypatch: pytest.MonkeyPatch) -> None:
    x, truth = planted(2_000, k=4, dim=8)
    calls = spy(monkeypatch)
    seg = cluster_users(x, SegmentConfig(k=4, fit_sample=1_000))
    assert calls == [(1_000, 4, False), (8_000, 4, True)]
    assert seg.criterion == "fixed" and adjusted_rand(truth, seg.labels) == pytest.approx(1.0)
    assert list(seg.sizes()) == [2_000] * 4


def test_the_sample_is_seeded() -> None:
    x, _ = planted(400, k=3, dim=8, spread=0.4, seed=2)
    config = SegmentConfig(k_min=2, k_max=4, n_init=2, fit_sample=200)
    a, b = cluster_users(x, config), cluster_users(x, config)
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.centres, b.centres)
    assert a.silhouette_by_k == b.silhouette_by_k
    other = cluster_users(x, SegmentConfig(k_min=2, k_max=4, n_init=2, fit_sample=200, seed=1))
    assert other.silhouette_by_k != a.silhouette_by_k  # another seed, another sample


def test_membership_scores_in_blocks_equal_the_whole() -> None:
    rng = np.random.default_rng(0)
    x, centres = rng.normal(0, 1, (1_003, 6)), rng.normal(0, 1, (5, 6))
    labels = rng.integers(0, 5, 1_003)
    whole = membership_scores(x, centres, labels, block=10_000)
    assert np.array_equal(membership_scores(x, centres, labels, block=7), whole)
    d = np.linalg.norm(x[:, None, :] - centres[None], axis=2)
    own = d[np.arange(len(x)), labels]
    d[np.arange(len(x)), labels] = np.inf
    assert np.allclose(whole, np.clip(1 - own / d.min(axis=1), 0, 1))


def test_bad_sample_size_is_refused() -> None:
    with pytest.raises(SegmentError, match="fit_sample"):
        SegmentConfig(fit_sample=50)
    with pytest.raises(SegmentError, match="fit_sample"):
        SegmentConfig(k=200, fit_sample=150)
