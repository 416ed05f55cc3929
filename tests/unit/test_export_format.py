"""The export contract (graphstore.export_format): files written and read back, the oracle and
query-task files, refusals; the exporter's parts (features, endpoint mapping, selections)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from graphstore import export_format
from graphstore.errors import ExportFileError
from graphstore.export_features import UserColumns, user_features
from graphstore.export_format import write_export
from tests.unit.fresh_python import run_fresh


def test_write_export_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "export"
    x, names = user_features(
        [
            {"id": "u1", "age": 30, "gender": "F", "occupation": "nurse"},
            {"id": "u2", "age": None, "gender": "M", "occupation": None},
        ]
    )
    write_export(
        out,
        {
            "User": {"ids": ["u1", "u2"], "x": x, "features": names},
            "Item": {"ids": ["i1", "i2", "i3"]},
        },
        {
            ("User", "CLICKED", "Item"): {
                "edge_index": np.array([[0, 1], [2, 0]]),
                "time": np.array([1.0, np.nan]),
                "weight": np.array([1.0, 3.0]),
            }
        },
    )
    meta = json.loads((out / "meta.json").read_text())
    assert meta["format"] == 1 and meta["node_types"]["Item"]["count"] == 3
    assert meta["edge_types"] == [["User", "CLICKED", "Item"]]
    with np.load(out / "graph.npz", allow_pickle=False) as z:
        assert list(z["User.ids"]) == ["u1", "u2"]
        assert z["User__CLICKED__Item.edge_index"].dtype == np.int64
        assert z["User__CLICKED__Item.edge_index"].tolist() == [[0, 1], [2, 0]]
        assert z["User.x"].shape == (2, len(names))
    assert names[:2] == ["age", "age_known"] and "gender=F" in names and "occ=nurse" in names
    assert x[0, 0] == np.float32(0.3) and x[1, 1] == 0.0
    assert not list(tmp_path.glob("export.tmp-*"))


def test_export_source_keeps_every_row(tmp_path: Path) -> None:
    from graphstore import model
    from graphstore.export import export_source
    from graphstore.sources.synthetic import SyntheticSpec, generate

    source, _ = generate(SyntheticSpec(users=80, items=40, events_per_user=6, seed=2))
    summary = export_source(source, tmp_path / "x")
    with np.load(tmp_path / "x" / "graph.npz", allow_pickle=False) as z:
        clicks = z["User__CLICKED__Item.edge_index"]
        assert clicks.shape[1] == len(list(source.interactions[model.CLICKED]))
        users, items = z["User.ids"], z["Item.ids"]
        pairs = {(users[a], items[b]) for a, b in clicks.T}
        assert pairs == {(r["user"], r["target"]) for r in source.interactions[model.CLICKED]}
        assert z["Query__LED_TO__Item.edge_index"].shape[1] == len(list(source.led_to))
        assert z["Category__SUBCATEGORY_OF__Category.edge_index"].shape[1] == sum(
            1 for c in source.categories if c["parent"]
        )
    assert summary["nodes"]["User"] == 80


def test_selection_filters_and_bad_selections() -> None:
    from graphstore.errors import GraphStoreError
    from graphstore.export import Selection

    assert Selection().filters() == {"scope": "all"}
    assert Selection(users=("u1",), hops=2, until=5.0).filters() == {
        "scope": "k-hop",
        "users": ["u1"],
        "hops": 2,
        "time_window": {"since": None, "until": 5.0},
    }
    assert Selection(segment="s1").filters() == {"scope": "segment", "segment": "s1"}
    with pytest.raises(GraphStoreError, match="not both"):
        Selection(users=("u1",), segment="s1")
    with pytest.raises(GraphStoreError, match="empty time window"):
        Selection(since=5.0, until=5.0)
    with pytest.raises(GraphStoreError, match="hops"):
        Selection(users=("u1",), hops=-1)
    with pytest.raises(GraphStoreError, match="at least one"):
        Selection(users=())


def test_user_features_vectorised() -> None:
    x, names = user_features(
        [
            {"age": 50, "gender": "F", "occupation": None},
            {"age": None, "gender": None, "occupation": "nurse"},
        ]
    )
    assert names == ["age", "age_known", "gender=F", "occ=nurse"]
    assert x.tolist() == [[0.5, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]


def test_endpoint_mapping_dense_and_sparse_ids() -> None:
    """Internal ids map to rows the same way through the lookup table (dense ids) and the
    binary search (sparse ids); ids that are not exported are flagged, never mapped."""
    from graphstore.export_columns import LUT_MIN, LUT_SLACK, NodeRows

    queries = np.array([7, 3, 5, 100, -1, 11, 3])
    for offset in (0, LUT_SLACK * 10 + LUT_MIN):  # second: too sparse for a table
        nodes = NodeRows(np.array([5, 3, 11, 7]) + offset, ["a", "b", "c", "d"])
        assert (nodes._lut is not None) == (offset == 0)
        rows, found = nodes.index(np.where(queries >= 0, queries + offset, -1))
        assert found.tolist() == [True, True, True, False, False, True, True]
        assert rows[found].tolist() == [3, 1, 0, 2, 1]
    rows, found = NodeRows(np.array([], dtype=np.int64), []).index(queries)
    assert not found.any() and len(rows) == len(queries)


def test_type_columns_split_by_endpoint_label() -> None:
    """One HAS_TERM scan feeds both (Query, HAS_TERM, Term) and (Item, HAS_TERM, Term); a
    relationship whose endpoint is not exported (a user without consent) is dropped."""
    from graphstore import model
    from graphstore.export_columns import NodeRows, map_types

    nodes = {
        model.USER: NodeRows(np.array([0, 1]), ["u0", "u1"]),
        model.ITEM: NodeRows(np.array([10, 11]), ["i0", "i1"]),
        model.QUERY: NodeRows(np.array([20]), ["q0"]),
        model.TERM: NodeRows(np.array([30, 31]), ["t0", "t1"]),
        model.CATEGORY: NodeRows(np.array([], dtype=np.int64), []),
    }
    empty = (np.array([], dtype=np.int64),) * 2 + (np.array([]),) * 2
    columns = {rel: empty for _, rel, _ in model.EDGE_TYPES}
    columns[model.HAS_TERM] = (
        np.array([20, 10, 11]),
        np.array([31, 30, 31]),
        np.full(3, np.nan),
        np.array([1.0, 2.0, 3.0], dtype=np.float32),
    )
    columns[model.CLICKED] = (
        np.array([0, 9, 1]),  # 9: a user who is not exported
        np.array([11, 10, 10]),
        np.array([5.0, 6.0, 7.0]),
        np.array([1.0, 1.0, 2.0], dtype=np.float32),
    )
    edges = map_types(nodes, columns)
    assert set(edges) == {
        (model.QUERY, model.HAS_TERM, model.TERM),
        (model.ITEM, model.HAS_TERM, model.TERM),
        (model.USER, model.CLICKED, model.ITEM),
    }
    assert edges[(model.QUERY, model.HAS_TERM, model.TERM)]["edge_index"].tolist() == [[0], [1]]
    item_terms = edges[(model.ITEM, model.HAS_TERM, model.TERM)]
    assert item_terms["edge_index"].tolist() == [[0, 1], [0, 1]]
    assert item_terms["weight"].tolist() == [2.0, 3.0]
    clicked = edges[(model.USER, model.CLICKED, model.ITEM)]
    assert clicked["edge_index"].tolist() == [[0, 1], [1, 0]]
    assert clicked["time"].tolist() == [5.0, 7.0]


def test_user_columns_features_equal_row_features() -> None:
    """The graph export's columnar features (sentinels -1 / '' as the statements return them)
    equal the row-wise features of the same users, after concat and take as in k-hop and
    time-window exports."""
    record = {
        "age": [30, -1, 71.5, 18],
        "gender": ["F", "", "M", "F"],
        "occupation": ["nurse", "writer", "", "nurse"],
    }
    more = UserColumns.of({"age": [-1], "gender": ["X"], "occupation": [""]})
    cols = UserColumns.of(record).concat(more).take(np.array([0, 1, 2, 4]))
    x, names = cols.features()
    rows = [
        {"age": 30, "gender": "F", "occupation": "nurse"},
        {"age": None, "gender": None, "occupation": "writer"},
        {"age": 71.5, "gender": "M", "occupation": None},
        {"age": None, "gender": "X", "occupation": None},
    ]
    expected_x, expected_names = user_features(rows)
    assert (
        names
        == expected_names
        == ["age", "age_known", "gender=F", "gender=M", "gender=X", "occ=nurse", "occ=writer"]
    )
    assert x.dtype == np.float32 and x.tolist() == expected_x.tolist()
    empty_x, empty_names = UserColumns.of({"age": [], "gender": [], "occupation": []}).features()
    assert empty_x.shape == (0, 2) and empty_names == ["age", "age_known"]


def test_export_files_read_back_through_the_contract(tmp_path: Path) -> None:
    out = write_export(
        tmp_path / "e",
        {"User": {"ids": ["u1"], "x": np.ones((1, 2)), "features": ["a", "b"]}},
        {("User", "SEARCHED", "Query"): {"edge_index": [[0], [0]], "time": [1.0], "weight": [2]}},
        {"scope": "all"},
    )
    files = export_format.read_export(out)
    assert files.meta["format"] == export_format.FORMAT_VERSION
    assert files.labels == ["User"] and files.node_meta["User"]["features"] == ["a", "b"]
    assert files.edge_types == [("User", "SEARCHED", "Query")]
    assert files.arrays["User__SEARCHED__Query.weight"].dtype == np.float32
    assert export_format.read_ids(out, ("User", "Item")) == {"User": {"u1": 0}, "Item": {}}
    assert export_format.edge_type(export_format.edge_name(("A", "R", "B"))) == ("A", "R", "B")


def test_the_contract_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(ExportFileError, match=r"lacks meta\.json or graph\.npz"):
        export_format.read_export(tmp_path)
    out = write_export(tmp_path / "e", {"User": {"ids": ["u1"]}}, {})
    meta = json.loads((out / "meta.json").read_text())
    (out / "meta.json").write_text(json.dumps({**meta, "format": 99}))
    with pytest.raises(ExportFileError, match="unsupported export format 99"):
        export_format.read_export(out)
    (out / "meta.json").write_text("{")
    with pytest.raises(ExportFileError, match="not valid JSON"):
        export_format.read_export(out)
    with pytest.raises(ExportFileError, match="bad edge name"):
        export_format.edge_type("User__CLICKED")


def test_oracle_and_query_task_files_round_trip(tmp_path: Path) -> None:
    assert export_format.read_oracle(tmp_path) is None
    assert export_format.read_query_task(tmp_path) is None
    export_format.write_oracle(tmp_path, ["u1"], np.ones((1, 3)), ["i1", "i2"], np.zeros((2, 3)))
    oracle = export_format.read_oracle(tmp_path)
    assert oracle is not None and oracle["User.vector"].dtype == np.float32
    assert oracle["Item.ids"].tolist() == ["i1", "i2"]
    rows = export_format.QueryTaskRows(
        user=np.array([0, -1]),
        query=np.array([2, 0]),
        term_indptr=np.array([0, 2, 3]),
        term_index=np.array([4, 5, 4]),
        item=np.array([1, 1]),
        time=np.array([5.0, np.nan]),
    )
    export_format.write_query_task(tmp_path, rows)
    back = export_format.read_query_task(tmp_path)
    assert back is not None and len(back) == 2
    assert back.term_indptr.tolist() == [0, 2, 3] and back.user.dtype == np.int64
    assert back.time is not None and back.time[0] == 5.0 and np.isnan(back.time[1])
    rows.term_indptr = np.array([0, 2])
    export_format.write_query_task(tmp_path, rows)
    with pytest.raises(ExportFileError, match="matching lengths"):
        export_format.read_query_task(tmp_path)
    np.savez(tmp_path / "oracle.npz", **{"User.ids": np.array(["u1"])})
    with pytest.raises(ExportFileError, match=r"lacks User\.vector"):
        export_format.read_oracle(tmp_path)


def test_the_contract_loads_neither_neo4j_nor_torch() -> None:
    """Both sides import the contract: training must not load neo4j through it, the graph
    store must not load torch; training reads exports through it and imports nothing else of
    the graph store."""
    code = """
        import sys
        import graphstore.export_format
        contract = sorted({m.split(".")[0] for m in sys.modules} & {"neo4j", "torch"})
        import importlib, pkgutil, training
        for m in pkgutil.walk_packages(training.__path__, "training."):
            importlib.import_module(m.name)
        reader = sorted({m.split(".")[0] for m in sys.modules} & {"neo4j"})
        print("CONTRACT", contract, "READER", reader)
        print("STORE", sorted(m for m in sys.modules if m.split(".")[0] == "graphstore"))
        print("USES", training.data.read_export is graphstore.export_format.read_export)
    """
    out = run_fresh(code)
    assert "CONTRACT [] READER []" in out, out
    assert "USES True" in out
    # training reaches the graph store only through the contract (and what it is made of)
    assert (
        "STORE ['graphstore', 'graphstore.errors', 'graphstore.export_format', 'graphstore.model']"
        in out
    ), out
