from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from export_factory import write_random_export

from training.data import ITEM, USER, ExportGraph, load_export, user_item_pairs
from training.errors import ExportFormatError
from training.splits import Split, eval_candidates, split_interactions


def test_load_reads_every_type(graph: ExportGraph) -> None:
    assert set(graph.node_types) == {"User", "Item", "Query", "Term", "Category"}
    assert graph.x["User"].shape == (graph.num_nodes("User"), 6)
    assert (USER, "CLICKED", ITEM) in graph.edges


def test_missing_files_and_bad_shapes(tmp_path: Path) -> None:
    with pytest.raises(ExportFormatError):
        load_export(tmp_path)
    d = write_random_export(tmp_path / "bad")
    with np.load(d / "graph.npz") as z:
        arrays = dict(z)
    arrays["User__CLICKED__Item.edge_index"] = arrays["User__CLICKED__Item.edge_index"] + 10_000
    np.savez(d / "graph.npz", **arrays)
    with pytest.raises(ExportFormatError, match="outside"):
        load_export(d)
    (d / "meta.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(ExportFormatError, match="format"):
        load_export(d)


def test_leave_one_out_by_time(graph: ExportGraph, split: Split) -> None:
    pairs = user_item_pairs(graph, {})
    for u, i in zip(split.test.row[:20], split.test.col[:20], strict=True):
        mine = pairs.time[pairs.row == u]
        assert pairs.time[(pairs.row == u) & (pairs.col == i)][0] == mine.max()
    for u, i in zip(split.val.row[:20], split.val.col[:20], strict=True):
        mine = np.sort(pairs.time[pairs.row == u])
        assert pairs.time[(pairs.row == u) & (pairs.col == i)][0] == mine[-2]
    assert np.array_equal(split.val.row, split.test.row)


def test_no_evaluation_edge_reaches_the_training_graph(split: Split) -> None:
    held = set(zip(split.test.row.tolist(), split.test.col.tolist(), strict=True))
    held |= set(zip(split.val.row.tolist(), split.val.col.tolist(), strict=True))
    for et, e in split.train_edges.items():
        if et[0] == USER and et[2] == ITEM:
            assert not held & set(zip(e.index[0].tolist(), e.index[1].tolist(), strict=True))
    searched = split.train_edges[(USER, "SEARCHED", "Query")]
    held_q = set(zip(split.test_search.row.tolist(), split.test_search.col.tolist(), strict=True))
    assert not held_q & set(
        zip(searched.index[0].tolist(), searched.index[1].tolist(), strict=True)
    )


def test_eval_negatives_are_unseen_and_distinct(split: Split) -> None:
    users, _, negs = eval_candidates(split, "test", 10)
    assert negs.shape == (len(users), 10)
    assert not split.is_known(np.repeat(users, 10), negs.reshape(-1)).any()
    assert all(len(set(row)) == len(row) for row in negs.tolist())
    again = eval_candidates(split, "test", 10)[2]
    assert np.array_equal(negs, again)


def test_minimal_export_only_clicks(tmp_path: Path) -> None:
    d = write_random_export(
        tmp_path / "min",
        n_queries=0,
        n_terms=0,
        n_categories=0,
        relations=("User__CLICKED__Item",),
        with_features=False,
    )
    g = load_export(d)
    s = split_interactions(g, 0, {})
    assert s.n_queries == 0 and len(s.train) > 0 and len(s.train_search) == 0
