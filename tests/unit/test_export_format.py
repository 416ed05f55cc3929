from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from graphstore.export import user_features, write_export


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
    from graphstore.synthetic import SyntheticSpec, generate

    source, _ = generate(SyntheticSpec(users=80, items=40, events_per_user=6, seed=2))
    summary = export_source(source, tmp_path / "x")
    with np.load(tmp_path / "x" / "graph.npz", allow_pickle=False) as z:
        clicks = z["User__CLICKED__Item.edge_index"]
        assert clicks.shape[1] == len(list(source.interactions[model.CLICKED]))
        users, items = z["User.ids"], z["Item.ids"]
        pairs = {(users[a], items[b]) for a, b in clicks.T}
        assert pairs == {(r["user"], r["target"]) for r in source.interactions[model.CLICKED]}
        assert z["Query__LED_TO__Item.edge_index"].shape[1] == len(source.led_to)
        assert z["Category__SUBCATEGORY_OF__Category.edge_index"].shape[1] == sum(
            1 for c in source.categories if c["parent"]
        )
    assert summary["nodes"]["User"] == 80


def test_selection_filters_and_bad_selections() -> None:
    import pytest

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
