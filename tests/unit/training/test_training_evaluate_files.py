"""The files ``dpgcn evaluate`` writes next to an export: the synthetic oracle and the query task
(checked through the training side that reads them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from graphstore.export import export_query_task, export_source
from graphstore.export_format import write_oracle
from graphstore.sources import synthetic
from graphstore.sources.text import normalize_query
from training.config import TrainConfig
from training.data import load_export
from training.oracle import load_oracle
from training.query_task import load_query_rows
from training.splits import split_interactions


def test_synthetic_oracle_scores_are_the_planted_model(tmp_path: Path) -> None:
    source, truth = synthetic.generate(synthetic.SyntheticSpec(users=40, items=25, seed=3))
    export = tmp_path / "export"
    export_source(source, export)
    write_oracle(export, *truth.oracle_vectors())
    graph = load_export(export)
    scorer = load_oracle(export, graph)
    assert scorer is not None
    rows = [truth.user_ids.index(u) for u in graph.ids["User"].tolist()]
    cols = [truth.item_ids.index(i) for i in graph.ids["Item"].tolist()]
    expected = truth.scores()[np.ix_(rows, cols)]
    got = scorer.all_items(np.arange(len(rows)))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_query_task_rows_map_to_export_rows(tmp_path: Path) -> None:
    source, _ = synthetic.generate(synthetic.SyntheticSpec(users=40, items=25, seed=3))
    export = tmp_path / "export"
    export_source(source, export)
    graph = load_export(export)
    query = source.queries[0]
    csv = tmp_path / "test.csv"
    csv.write_text(
        "user,sku,category,query,click_time,query_time\n"
        f"u1,i3,c,{query['text']},t,t\n"  # known user, item and query
        "nobody,i999,c,zzzunknownword games,t,t\n"  # nothing known
    )
    counts = export_query_task(csv, export)
    assert counts == {"rows": 2, "known_user": 1, "known_query": 1, "known_item": 1}
    split = split_interactions(graph, 0, TrainConfig().policy.reward_of())
    rows = load_query_rows(export, split)
    assert rows is not None
    ids = {label: graph.ids[label].tolist() for label in ("User", "Item", "Query", "Term")}
    assert rows.user.tolist() == [ids["User"].index("u1"), -1]
    assert rows.item.tolist() == [ids["Item"].index("i3"), -1]
    assert rows.query.tolist() == [ids["Query"].index(normalize_query(query["text"])), -1]
    first_terms = rows.term_index[rows.term_indptr[0] : rows.term_indptr[1]]
    assert sorted(ids["Term"][t] for t in first_terms) == normalize_query(query["text"]).split()
    assert rows.term_indptr[2] == rows.term_indptr[1]  # no known term in the second row
