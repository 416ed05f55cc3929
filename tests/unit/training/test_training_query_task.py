"""The query-conditioned task (Best Buy competition protocol): MAP@5, query frequency, blend."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from export_factory import write_random_export

from training.config import TrainConfig
from training.data import ITEM, LED_TO, QUERY, load_export
from training.errors import ExportFormatError
from training.evaluate import evaluate
from training.protocols import EmbeddingScorer
from training.query_task import (
    QueryRows,
    QueryTask,
    average_precision_at,
    load_query_rows,
    map_at,
    validation_rows,
)
from training.splits import split_interactions


def test_average_precision_at_5() -> None:
    scores = np.array(
        [
            [5.0, 4.0, 3.0, 2.0, 1.0, 0.0],  # target rank 1
            [5.0, 4.0, 3.0, 2.0, 1.0, 0.0],  # target rank 3
            [5.0, 4.0, 3.0, 2.0, 1.0, 0.0],  # target rank 6: outside the top 5
            [1.0, 1.0, 1.0, 0.0, 0.0, 0.0],  # tie with two others: pessimistic rank 3
            [5.0, 4.0, 3.0, 2.0, 1.0, 0.0],  # unknown item
        ]
    )
    targets = np.array([0, 2, 5, 1, -1])
    np.testing.assert_allclose(average_precision_at(scores, targets), [1.0, 1 / 3, 0.0, 1 / 3, 0.0])
    assert map_at(scores, targets) == pytest.approx((1 + 1 / 3 + 1 / 3) / 5)


def _rows(user: list[int], query: list[int], terms: list[list[int]], item: list[int]) -> QueryRows:
    indptr = np.concatenate([[0], np.cumsum([len(t) for t in terms])]).astype(np.int64)
    index = np.array([t for ts in terms for t in ts], dtype=np.int64)
    return QueryRows(
        np.array(user), np.array(query), indptr, index, np.array(item), np.zeros(len(user))
    )


@pytest.fixture(scope="module")
def task_split(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, QueryTask]:
    export = write_random_export(tmp_path_factory.mktemp("qt") / "e", seed=2)
    split = split_interactions(load_export(export), 0, TrainConfig().policy.reward_of())
    return export, QueryTask(split)


def test_query_frequency_follows_led_to_counts(task_split: tuple[Path, QueryTask]) -> None:
    _, task = task_split
    split = task.split
    e = split.train_edges[(QUERY, LED_TO, ITEM)]
    q = int(np.bincount(e.index[0]).argmax())  # a query that led somewhere
    counts = task.led[q]
    rows = _rows([-1], [q], [[]], [int(counts.argmax())])
    scores = task.query_frequency(rows)
    # the items it led to, in count order, before every other item
    led_items = np.flatnonzero(counts)
    assert scores[0, led_items].min() > np.delete(scores[0], led_items).max()
    assert counts[scores[0].argmax()] == counts.max()


def test_unknown_query_uses_similar_queries(task_split: tuple[Path, QueryTask]) -> None:
    _, task = task_split
    q = int(np.flatnonzero(task.led.sum(1) > 0)[0])
    terms = np.flatnonzero(task.query_terms[q]).tolist()
    known = task.query_frequency(_rows([-1], [q], [terms], [0]))
    unseen = task.query_frequency(_rows([-1], [-1], [terms], [0]))
    # the unseen query with the same terms draws on q (and the other queries sharing terms)
    assert unseen[0, task.led[q] > 0].sum() > 0
    assert np.isfinite(unseen).all() and np.isfinite(known).all()
    nothing = task.query_frequency(_rows([-1], [-1], [[]], [0]))
    np.testing.assert_allclose(nothing[0], 1e-6 * task.log_pop)  # popularity only


def test_validation_rows_take_out_their_own_click(task_split: tuple[Path, QueryTask]) -> None:
    _, task = task_split
    val = validation_rows(task.split)
    assert len(val) > 0 and (val.led_correction == 1).all()
    corrected = task._led_rows(val, slice(None))
    raw = task.led[val.query]
    r = np.arange(len(val))
    expected = np.maximum(raw[r, val.item] - 1, 0)
    np.testing.assert_allclose(corrected[r, val.item], expected)


def test_graph_model_scores_with_the_query(task_split: tuple[Path, QueryTask]) -> None:
    _, task = task_split
    split = task.split
    rng = np.random.default_rng(0)
    user = rng.normal(size=(split.n_users, 3)).astype(np.float32)
    item = rng.normal(size=(split.n_items, 3)).astype(np.float32)
    scorer = EmbeddingScorer(user, item, None)
    s = split.train_search
    q = int(s.col[0])
    searchers = s.row[s.col == q]
    rows = _rows([int(searchers[0]), -1], [q, q], [[], []], [0, 0])
    got = task.graph_model(rows, scorer)
    v_q = user[searchers].astype(np.float64).mean(0)
    np.testing.assert_allclose(got[1], item @ v_q, rtol=1e-5)
    np.testing.assert_allclose(got[0], item @ (v_q + user[searchers[0]]), rtol=1e-5)


def test_load_query_rows_checks_ranges(task_split: tuple[Path, QueryTask], tmp_path: Path) -> None:
    export, task = task_split
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in ("graph.npz", "meta.json"):
        (bad / f).write_bytes((export / f).read_bytes())
    np.savez(
        bad / "query_task.npz",
        **{
            "test.user": np.array([0]),
            "test.query": np.array([0]),
            "test.term_indptr": np.array([0, 0]),
            "test.term_index": np.zeros(0, np.int64),
            "test.item": np.array([10**6]),  # no such item
        },
    )
    with pytest.raises(ExportFormatError):
        load_query_rows(bad, task.split)


def test_evaluate_reports_competition_map(tmp_path: Path, tiny_config: TrainConfig) -> None:
    export = write_random_export(tmp_path / "e", seed=4)
    graph = load_export(export)
    split = split_interactions(graph, 0, tiny_config.policy.reward_of())
    e = split.train_edges[(QUERY, LED_TO, ITEM)]
    n = 30
    np.savez(
        export / "query_task.npz",
        **{
            "test.user": np.where(np.arange(n) % 3 == 0, -1, np.arange(n) % split.n_users),
            "test.query": e.index[0][:n],
            "test.term_indptr": np.zeros(n + 1, np.int64),
            "test.term_index": np.zeros(0, np.int64),
            "test.item": e.index[1][:n],  # the item the query led to
        },
    )
    evaluate(
        export,
        tmp_path / "out",
        ["popularity", "query_frequency", "embedding_mlp", "lightgcn"],
        (0, 1),
        config=tiny_config.replace({"optim.epochs": 1}),
    )
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    qf = results["query_frequency"]["competition_map@5"]["mean"]
    assert qf > results["popularity"]["competition_map@5"]["mean"]
    assert qf > 0.3  # the clicked item is one its query led to
    lg = results["lightgcn"]
    assert {"competition_map@5", "competition_blend_map@5", "competition_blend_lambda"} <= set(lg)
    assert "competition_map@5" not in results["embedding_mlp"]  # not a dot-product model
    assert "Query-conditioned ranking" in (tmp_path / "out" / "results.md").read_text()
