"""The smoothed query likelihood (training.query_smoothing), checked against hand-computed values
on a four-click search log."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from export_factory import write_random_export

from graphstore.export import export_query_task, export_source
from graphstore.sources import synthetic
from training.config import TrainConfig
from training.data import (
    HAS_TERM,
    ITEM,
    LED_TO,
    QUERY,
    SEARCHED,
    TERM,
    USER,
    EdgeSet,
    ExportGraph,
    load_export,
)
from training.errors import ExportFormatError
from training.evaluate import evaluate
from training.query_smoothing import (
    DAY,
    SmoothedQueryScorer,
    SmoothingParams,
    choose_params,
    heldout_event_rows,
    pair_search_events,
)
from training.query_task import QueryRows, load_query_rows, map_at
from training.splits import split_interactions

T0 = 1.3e9  # epoch seconds of day 0


def _edges(pairs: list[tuple[int, int]], times: list[float] | None = None) -> EdgeSet:
    index = np.array(pairs, dtype=np.int64).T.reshape(2, -1)
    t = np.array(times if times is not None else [np.nan] * len(pairs), dtype=np.float64)
    return EdgeSet(index, t, np.ones(len(pairs), np.float32))


@pytest.fixture
def log() -> ExportGraph:
    """Users u0..u2, items i0..i2, queries q0 = {t0}, q1 = {t0, t1}. Clicks (search at day d,
    click 10 s later): u0 q0→i0 day 0; u1 q0→i1 day 10; u2 q1→i0 day 0; u2 q1→i2 day 10."""
    day = [T0, T0 + 10 * DAY]
    return ExportGraph(
        meta={},
        ids={
            USER: np.array(["u0", "u1", "u2"]),
            ITEM: np.array(["i0", "i1", "i2"]),
            QUERY: np.array(["q0", "q1"]),
            TERM: np.array(["t0", "t1"]),
        },
        x={},
        edges={
            (USER, SEARCHED, QUERY): _edges(
                [(0, 0), (1, 0), (2, 1), (2, 1)], [day[0], day[1], day[0], day[1]]
            ),
            (USER, "CLICKED", ITEM): _edges(
                [(0, 0), (1, 1), (2, 0), (2, 2)],
                [day[0] + 10, day[1] + 10, day[0] + 10, day[1] + 10],
            ),
            (QUERY, LED_TO, ITEM): _edges([(0, 0), (0, 1), (1, 0), (1, 2)]),
            (QUERY, HAS_TERM, TERM): _edges([(0, 0), (1, 0), (1, 1)]),
        },
    )


def _rows(
    user: list[int],
    query: list[int],
    terms: list[list[int]],
    item: list[int],
    own: list[float],
    time: list[float] | None = None,
) -> QueryRows:
    indptr = np.concatenate([[0], np.cumsum([len(t) for t in terms])]).astype(np.int64)
    index = np.array([t for ts in terms for t in ts], dtype=np.int64)
    return QueryRows(
        np.array(user),
        np.array(query),
        indptr,
        index,
        np.array(item),
        np.array(own, dtype=np.float64),
        None if time is None else np.array(time, dtype=np.float64),
    )


def test_each_click_is_paired_with_the_latest_earlier_search(log: ExportGraph) -> None:
    ev = pair_search_events(log)
    columns = (ev.user.tolist(), ev.query.tolist(), ev.item.tolist(), ev.time.tolist())
    got = sorted(zip(*columns, strict=True))
    assert got == [
        (0, 0, 0, T0),
        (1, 0, 1, T0 + 10 * DAY),
        (2, 1, 0, T0),
        (2, 1, 2, T0 + 10 * DAY),  # the second search of q1, not the first
    ]


def test_query_level_backs_off_to_the_term_model(log: ExportGraph) -> None:
    scorer = SmoothedQueryScorer(log)
    row = _rows([-1], [0], [[0]], [0], [0.0])
    got = scorer.score(row, SmoothingParams(mu=2.0, epsilon=0.1))
    # t0 is in q0 and q1: c(t0, ·) = [2, 1, 1] of 4; P(i) = (n_i + 1) / (4 + 3)
    p_t = 0.9 * np.array([2 / 4, 1 / 4, 1 / 4]) + 0.1 * np.array([3 / 7, 2 / 7, 2 / 7])
    expected = (np.array([1.0, 1.0, 0.0]) + 2.0 * p_t) / (2.0 + 2.0)
    np.testing.assert_allclose(got[0], expected)
    # μ → 0: the query's own click shares
    np.testing.assert_allclose(
        scorer.score(row, SmoothingParams(mu=1e-9, epsilon=0.1))[0], [0.5, 0.5, 0.0], atol=1e-8
    )


def test_an_unknown_query_uses_its_terms_and_no_terms_means_popularity(log: ExportGraph) -> None:
    scorer = SmoothedQueryScorer(log)
    rows = _rows([-1, -1], [-1, -1], [[1], []], [0, 0], [0.0, 0.0])
    got = scorer.score(rows, SmoothingParams(mu=2.0, epsilon=0.1))
    # t1 only in q1: c(t1, ·) = [1, 0, 1] of 2; no query counts, so P_1 = P_T
    pop = np.array([3 / 7, 2 / 7, 2 / 7])
    np.testing.assert_allclose(got[0], 0.9 * np.array([0.5, 0.0, 0.5]) + 0.1 * pop)
    np.testing.assert_allclose(got[1], pop)


def test_a_held_out_click_is_taken_out_of_every_count(log: ExportGraph) -> None:
    scorer = SmoothedQueryScorer(log)
    row = _rows([0], [0], [[0]], [0], [1.0])  # u0's own q0 → i0 click, left out
    got = scorer.score(row, SmoothingParams(mu=2.0, epsilon=0.1))
    # c(q0, ·) = [0, 1, 0]; c(t0, ·) = [1, 1, 1] of 3; item counts [1, 1, 1] → P(i) = 1/3
    p_t = np.full(3, 1 / 3)
    np.testing.assert_allclose(got[0], (np.array([0.0, 1.0, 0.0]) + 2.0 * p_t) / 3.0)


def test_the_time_level_weights_clicks_near_the_search(log: ExportGraph) -> None:
    scorer = SmoothedQueryScorer(log)
    base = SmoothingParams(mu=2.0, epsilon=0.1)
    timed = SmoothingParams(mu=2.0, epsilon=0.1, bandwidth_days=1.0, mu_time=1.0)
    row = _rows([-1], [0], [[0]], [0], [0.0], [T0 + 10 * DAY])
    p1 = scorer.score(row, base)[0]
    # q0's clicks: i0 ten days before the search, i1 at it
    c_h = np.array([math.exp(-10.0), 1.0, 0.0])
    np.testing.assert_allclose(scorer.score(row, timed)[0], (c_h + p1) / (c_h.sum() + 1.0))
    # without a time the level is skipped
    untimed = _rows([-1], [0], [[0]], [0], [0.0], [math.nan])
    np.testing.assert_allclose(scorer.score(untimed, timed)[0], p1)


def test_time_popularity_ratio(log: ExportGraph) -> None:
    scorer = SmoothedQueryScorer(log)
    params = SmoothingParams(mu=2.0, epsilon=0.1, bandwidth_days=1.0, mu_time=1e12, beta=1.0)
    row = _rows([-1], [0], [[0]], [0], [0.0], [T0 + 10 * DAY])
    p1 = scorer.score(row, SmoothingParams(mu=2.0, epsilon=0.1))[0]
    # clicks binned by the hour (h / 24), counted at the bin centres, 30 min after each click
    near, far = math.exp(-1800 / DAY), math.exp(-(10 * DAY - 1800) / DAY)
    n_h = np.array([far + far, near, near])  # i0 twice at day 0, i1 and i2 at day 10
    p_h = (n_h + 1) / (n_h.sum() + 3)
    pop = np.array([3 / 7, 2 / 7, 2 / 7])
    np.testing.assert_allclose(scorer.score(row, params)[0], p1 * p_h / pop, rtol=1e-9)


def test_items_the_user_clicked_are_discounted(log: ExportGraph) -> None:
    scorer = SmoothedQueryScorer(log)
    # u2's held-out q1 → i0 click: i0 is taken out of their history, i2 stays
    row = _rows([2], [1], [[0, 1]], [0], [1.0])
    plain = scorer.score(row, SmoothingParams())[0]
    got = scorer.score(row, SmoothingParams(discount=0.75))[0]
    np.testing.assert_allclose(got, plain * np.array([1.0, 1.0, 0.25]))


def test_choose_params_never_does_worse_than_the_defaults(log: ExportGraph) -> None:
    scorer = SmoothedQueryScorer(log)
    rows = heldout_event_rows(scorer, [np.array([0]), np.array([0, 1])])
    assert len(rows) == 4 and (rows.led_correction == 1).all()
    assert rows.time is not None and not np.isnan(rows.time).any()
    params, value = choose_params(scorer, rows, map_at)
    assert value == pytest.approx(map_at(scorer.score(rows, params), rows.item))
    assert value >= map_at(scorer.score(rows, SmoothingParams()), rows.item)


def test_query_task_file_keeps_the_search_time(tmp_path: Path) -> None:
    source, _ = synthetic.generate(synthetic.SyntheticSpec(users=40, items=25, seed=3))
    export = tmp_path / "export"
    export_source(source, export)
    csv = tmp_path / "test.csv"
    csv.write_text(
        "user,sku,category,query,click_time,query_time\n"
        "u1,i3,c,games,2011-09-02 13:05:24.146,2011-09-02 13:04:34.633\n"
        "u1,i3,c,games,t,not a time\n"
    )
    export_query_task(csv, export)
    split = split_interactions(load_export(export), 0, TrainConfig().policy.reward_of())
    rows = load_query_rows(export, split)
    assert rows is not None and rows.time is not None
    assert rows.time[0] == pytest.approx(1314968674.633)  # 2011-09-02T13:04:34.633Z
    assert math.isnan(rows.time[1])
    with np.load(export / "query_task.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["test.time"] = np.zeros(5)  # wrong length
    np.savez(export / "query_task.npz", **arrays)
    with pytest.raises(ExportFormatError):
        load_query_rows(export, split)


def test_evaluate_reports_the_smoothed_scorer(tmp_path: Path, tiny_config: TrainConfig) -> None:
    export = write_random_export(tmp_path / "e", seed=4)
    split = split_interactions(load_export(export), 0, tiny_config.policy.reward_of())
    e = split.train_edges[(QUERY, LED_TO, ITEM)]
    n = 30
    np.savez(
        export / "query_task.npz",
        **{
            "test.user": np.full(n, -1),
            "test.query": e.index[0][:n],
            "test.term_indptr": np.zeros(n + 1, np.int64),
            "test.term_index": np.zeros(0, np.int64),
            "test.item": e.index[1][:n],
            "test.time": np.full(n, np.nan),
        },
    )
    evaluate(
        export,
        tmp_path / "out",
        ["query_frequency", "lightgcn"],
        (0,),
        config=tiny_config.replace({"optim.epochs": 1}),
    )
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    blend = ("smoothed_blend_map@5", "smoothed_blend_val_map@5", "smoothed_blend_lambda")
    assert {f"competition_{k}" for k in blend} <= set(results["lightgcn"])
    qf = results["query_frequency"]
    keys = ("smoothed_map@5", "smoothed_heldout_map@5", "heldout_map@5", "smoothed_gain_lo")
    assert {f"competition_{k}" for k in keys} <= set(qf)
    smoothed = qf["competition_smoothed_map@5"]["mean"]
    assert qf["competition_smoothed_map@5_lo"]["mean"] <= smoothed
    assert smoothed <= qf["competition_smoothed_map@5_hi"]["mean"]
    assert qf["competition_smoothed_heldout_map@5"]["mean"] >= 0.0
