"""Unit tests of the in-memory nearest neighbours behind similar items and query suggestions:
exact cosine top-k against brute force, prefix ranges, and the scoring thread's batches."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from api.scoring import Scorer, nearest, nearest_among
from api.snapshot import BLOCK, cosine_rows, query_index
from graphstore.serving import QueryVectors


def _brute(
    matrix: np.ndarray, vec: np.ndarray, k: int, exclude: int
) -> tuple[list[int], list[float]]:
    norms = np.linalg.norm(matrix, axis=1)
    cos = np.where(
        norms > 0, matrix @ vec / np.where(norms > 0, norms, 1) / np.linalg.norm(vec), -np.inf
    )
    if exclude >= 0:
        cos[exclude] = -np.inf
    finite = np.flatnonzero(np.isfinite(cos))
    top = finite[np.argsort(-cos[finite], kind="stable")][:k]
    return top.tolist(), ((1 + cos[top]) / 2).tolist()


@pytest.mark.parametrize("n", [BLOCK * 40, BLOCK * 40 + 17, 37, 1])
def test_nearest_is_exact_cosine_on_neo4js_scale(n: int) -> None:
    """Block top-k by cosine equals brute force (rows, order, ``(1 + cos) / 2``), the excluded
    row and zero vectors left out, for several k in one batch and for one k."""
    rng = np.random.default_rng(n)
    matrix = rng.normal(size=(n, 16)).astype(np.float32)
    matrix *= rng.uniform(0.1, 10.0, size=(n, 1)).astype(np.float32)  # lengths must not matter
    if n > 3:
        matrix[3] = 0.0
    target = cosine_rows(matrix)
    vecs = rng.normal(size=(6, 16)).astype(np.float32)
    vecs[0] = matrix[min(2, n - 1)] * 3  # its own item first, unless excluded
    exclude = [min(2, n - 1), -1, 0, -1, n - 1, -1]
    for ks in ([10] * 6, [1, 5, 10, 100, 3, 20]):
        for r, (rows, scores) in enumerate(nearest(target, vecs, ks, exclude)):
            want_rows, want_scores = _brute(matrix, vecs[r], ks[r], exclude[r])
            assert rows.tolist() == want_rows
            np.testing.assert_allclose(scores, want_scores, atol=1e-6)
            assert 3 not in rows.tolist() or n <= 3
    ((rows, scores),) = nearest(target, matrix[:1] * 2, [1], [-1])
    assert rows.tolist() == [0] and scores[0] == pytest.approx(1.0, abs=1e-6)


def test_query_prefixes_and_ranking_among_them() -> None:
    """``starting_with`` gives exactly the queries whose text starts with the prefix (texts in
    order, queries without a text never); ``nearest_among`` ranks them by cosine, ties in
    text order, at most k."""
    rng = np.random.default_rng(1)
    words = ["rac", "race", "racing", "rad", "ra", "r", "puzzle", "tv", "racé", "rb"]
    texts: list[str | None] = [f"{w} {j}" if j % 7 else None for j, w in enumerate(words * 9)]
    matrix = rng.normal(size=(len(texts), 8)).astype(np.float32)
    matrix[10] = matrix[20]  # a tie: "rac 10" and "rac 20"? (both "rac ...") by text order
    index = query_index("v", QueryVectors([f"q{j}" for j in range(len(texts))], texts, matrix))
    assert index.texts[0] == "q0" and index.texts[1] == "race 1"  # no text: the id is shown
    for prefix in ("rac", "race", "ra", "r", "z", "racé", "puzzle 1", "tv 97"):
        got = index.starting_with(prefix).tolist()
        want = sorted((t, j) for j, t in enumerate(texts) if t is not None and t.startswith(prefix))
        assert got == [j for _, j in want], prefix
    rows = index.starting_with("rac")
    vec = matrix[10] + 0.0
    top, scores = nearest_among(index.cosine, vec, rows, 4)
    assert top.tolist()[:2] == [10, 20]  # equal vectors: by text, "rac 10" < "rac 20"
    cos = matrix[rows] @ vec / np.linalg.norm(matrix[rows], axis=1) / np.linalg.norm(vec)
    np.testing.assert_allclose(scores, (1 + np.sort(cos)[::-1][:4]) / 2, atol=1e-6)
    empty, _ = nearest_among(index.cosine, vec, index.starting_with("zz"), 4)
    assert empty.tolist() == []


def test_the_scoring_thread_batches_nearest_asks_per_target() -> None:
    """Concurrent asks against two targets, answered in the scoring thread's batches, equal
    :func:`nearest` for each vector alone."""
    from api.changes import Changes

    rng = np.random.default_rng(2)
    items = cosine_rows(rng.normal(size=(BLOCK * 8, 8)).astype(np.float32))
    queries = cosine_rows(rng.normal(size=(300, 8)).astype(np.float32))
    vecs = rng.normal(size=(40, 8)).astype(np.float32)
    scorer = Scorer(Changes(), lambda v: (None, None), lambda i, c: None, max_batch=16)
    scorer.start()

    async def ask_all() -> list[tuple[np.ndarray, np.ndarray]]:
        return await asyncio.gather(
            *(
                scorer.nearest(items if j % 2 else queries, vecs[j], 3 + j % 5, j if j % 2 else -1)
                for j in range(len(vecs))
            )
        )

    try:
        got = asyncio.run(ask_all())
    finally:
        scorer.stop()
    for j, (rows, scores) in enumerate(got):
        target = items if j % 2 else queries
        ((want_rows, want_scores),) = nearest(
            target, vecs[j][None], [3 + j % 5], [j if j % 2 else -1]
        )
        assert rows.tolist() == want_rows.tolist()
        np.testing.assert_allclose(scores, want_scores, atol=1e-7)
