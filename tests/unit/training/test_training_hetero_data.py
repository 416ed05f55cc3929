"""An export as a PyG ``HeteroData`` (training/hetero.py) and the documented snippet that trains a
stock PyG model on it."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from export_factory import write_random_export

from training.data import ITEM, QUERY, SEARCHED, USER
from training.errors import ExportFormatError
from training.hetero import MASKS, hetero_data_from_split, to_hetero_data, train_graph
from training.splits import Split

DOC = Path(__file__).resolve().parents[3] / "docs" / "export-format.md"


def _pairs(index: torch.Tensor) -> set[tuple[int, int]]:
    return set(zip(index[0].tolist(), index[1].tolist(), strict=True))


def test_hetero_data_nodes_edges_and_reverses(split: Split) -> None:
    data = hetero_data_from_split(split)
    graph = split.graph
    for t in graph.node_types:
        assert data[t].num_nodes == graph.num_nodes(t)
        assert torch.equal(data[t].node_id, torch.arange(graph.num_nodes(t)))
        assert data.external_ids[t] == graph.ids[t].tolist()
    assert torch.equal(data[USER].x, torch.from_numpy(graph.x[USER]))
    assert data.feature_names[USER] == graph.feature_names[USER]
    for et, e in graph.edges.items():
        fwd, rev = data[et], data[et[2], f"rev_{et[1]}", et[0]]
        assert torch.equal(fwd.edge_index, torch.from_numpy(e.index))
        assert torch.equal(rev.edge_index, fwd.edge_index.flip(0))
        assert torch.equal(fwd.edge_weight, torch.from_numpy(e.weight))
        assert torch.allclose(rev.time, torch.from_numpy(e.time), equal_nan=True)
    assert len(data.edge_types) == 2 * len(graph.edges)


def test_split_masks_follow_the_harness_split(split: Split) -> None:
    data = hetero_data_from_split(split)
    interactions = [et for et in data.edge_types if et[0] == USER and et[2] == ITEM]
    assert interactions
    for which, pairs in zip(MASKS, (split.train, split.val, split.test), strict=True):
        got: set[tuple[int, int]] = set()
        for et in interactions:
            store = data[et]
            got |= _pairs(store.edge_index[:, store[which]])
        assert got == set(zip(pairs.row.tolist(), pairs.col.tolist(), strict=True)), which
    searched = data[USER, SEARCHED, QUERY]
    assert _pairs(searched.edge_index[:, searched.val_mask]) == set(
        zip(split.val_search.row.tolist(), split.val_search.col.tolist(), strict=True)
    )
    for et in data.edge_types:  # each masked edge in exactly one split
        store = data[et]
        if "train_mask" in store:
            total = sum(store[m].long() for m in MASKS)
            assert bool((total == 1).all()), et
    cut = train_graph(data)
    for et in interactions:
        assert _pairs(cut[et].edge_index) == _pairs(data[et].edge_index[:, data[et].train_mask])
        assert len(cut[et].time) == cut[et].edge_index.shape[1]
        assert bool(cut[et].train_mask.all())
    catalogue = next(et for et in data.edge_types if "train_mask" not in data[et])
    assert torch.equal(cut[catalogue].edge_index, data[catalogue].edge_index)


def test_to_hetero_data_reads_an_export(tmp_path: Path) -> None:
    d = write_random_export(tmp_path / "e", n_users=20, n_items=10, seed=3)
    data = to_hetero_data(d, seed=0)
    assert data[USER].num_nodes == 20 and data[ITEM].num_nodes == 10
    with pytest.raises(ExportFormatError, match=r"lacks meta\.json"):
        to_hetero_data(tmp_path / "missing")


def _doc_snippet() -> str:
    text = DOC.read_text()
    section = text.split("## As a PyG `HeteroData`", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, f"no python block in {DOC}"
    return match.group(1)


def test_doc_snippet_trains_a_stock_pyg_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The code block of docs/export-format.md, run as it is on a small export: it trains and
    its validation AUC is better than chance (the export has latent clusters to learn)."""
    export_dir = write_random_export(tmp_path / "doc", n_users=80, n_items=40, seed=2)
    torch.manual_seed(0)
    np.random.seed(0)
    scope: dict[str, object] = {"export_dir": export_dir}
    exec(compile(_doc_snippet(), str(DOC), "exec"), scope)
    assert "validation AUC" in capsys.readouterr().out
    loss = scope["loss"]
    assert isinstance(loss, torch.Tensor) and torch.isfinite(loss)
    auc = scope["auc"]
    assert isinstance(auc, float) and auc > 0.6
