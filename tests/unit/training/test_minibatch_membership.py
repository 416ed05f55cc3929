"""The sorted-keys membership test (``training.data.in_sorted``) that the splits, the
``HeteroData`` split masks and the mini-batch negatives' rejection
(``TrainingNegatives.is_positive``) share, against a Python set of the same pairs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.sampler import NegativeSampling

from training.data import in_sorted
from training.minibatch import TrainingNegatives


def _pairs(rng: np.random.Generator, n: int, n_users: int, n_items: int) -> np.ndarray:
    return np.stack([rng.integers(0, n_users, n), rng.integers(0, n_items, n)])


@pytest.mark.parametrize("n_known", [0, 1, 7, 500])
def test_in_sorted_matches_a_set_of_pairs(n_known: int) -> None:
    """Random queries, half of them known pairs, plus the boundary keys (the smallest and
    largest possible key, one below the first known key and one above the last): every answer
    is the set's."""
    rng = np.random.default_rng(n_known)
    n_users, n_items = 40, 30
    known = _pairs(rng, n_known, n_users, n_items)
    known_keys = np.unique(known[0] * n_items + known[1]).astype(np.int64)
    reference = {(int(u), int(i)) for u, i in known.T}
    queries = np.concatenate([_pairs(rng, 300, n_users, n_items), known[:, : n_known // 2]], 1)
    keys = queries[0].astype(np.int64) * n_items + queries[1]
    last = n_users * n_items - 1
    edges = [0, last]
    if n_known:
        edges += [int(known_keys[0]) - 1, int(known_keys[-1]) + 1, int(known_keys[0])]
    keys = np.concatenate([keys, np.array([k for k in edges if 0 <= k <= last], np.int64)])
    expected = [(int(k) // n_items, int(k) % n_items) in reference for k in keys]
    assert in_sorted(keys, known_keys).tolist() == expected
    assert in_sorted(np.zeros(0, np.int64), known_keys).tolist() == []
    if n_known:
        assert any(expected) and not all(expected), "both answers are exercised"


def test_training_negatives_ask_the_shared_membership_test() -> None:
    """``TrainingNegatives.is_positive`` answers as the set of training pairs (torch in and
    out), and with no training pairs at all nothing is positive."""
    rng = np.random.default_rng(3)
    n_users, n_items = 50, 20
    known = _pairs(rng, 400, n_users, n_items)
    keys = np.unique(known[0] * n_items + known[1]).astype(np.int64)
    reference = {(int(u), int(i)) for u, i in known.T}
    users = torch.as_tensor(rng.integers(0, n_users, 1000))
    items = torch.as_tensor(rng.integers(0, n_items, 1000))
    base = NegativeSampling("triplet", 2)
    negatives = TrainingNegatives(base, users[:10], keys, n_items)
    got = negatives.is_positive(users, items)
    assert got.dtype == torch.bool
    expected = [(int(u), int(i)) in reference for u, i in zip(users, items, strict=True)]
    assert got.tolist() == expected and any(expected) and not all(expected)
    empty = TrainingNegatives(base, users[:10], np.zeros(0, np.int64), n_items)
    assert not empty.is_positive(users, items).any()
