"""Neighbour-sampled mini-batch training (training/minibatch.py) on a small graph."""

from __future__ import annotations

from typing import cast

import numpy as np
import torch

from training.config import TrainConfig
from training.data import ITEM, USER
from training.dataset import GraphData
from training.hetero import hetero_data_from_split, train_graph
from training.minibatch import TorchNeighborSampler, make_link_loader, minibatch_epoch
from training.models import build_model
from training.models.dpgcn import DPGCN

REL = (USER, "CLICKED", ITEM)


def _edges(index: torch.Tensor) -> set[tuple[int, int]]:
    return set(zip(index[0].tolist(), index[1].tolist(), strict=True))


def test_sampler_draws_existing_edges_within_the_fanout(data: GraphData) -> None:
    graph = train_graph(hetero_data_from_split(data.split))
    torch.manual_seed(0)
    loader = make_link_loader(graph, REL, [2, 1], batch_size=16, num_negatives=3)
    if isinstance(loader.link_sampler, TorchNeighborSampler):
        assert loader.link_sampler.num_neighbors.num_hops == 2
    batch = next(iter(loader))
    for et in batch.edge_types:
        ei = batch[et].edge_index
        if ei.numel() == 0:
            continue
        src, dst = batch[et[0]].n_id[ei[0]], batch[et[2]].n_id[ei[1]]
        assert _edges(torch.stack([src, dst])) <= _edges(graph[et].edge_index), et
        assert torch.equal(graph[et].edge_index[:, batch[et].e_id], torch.stack([src, dst]))
        # no destination keeps more than the largest fan-out (2) per relation
        assert int(torch.bincount(ei[1]).max()) <= 2, et
    store = batch[REL]
    labels = store.edge_label
    assert int(labels.sum()) == 16 and len(labels) == 16 * 4  # 3 negatives per positive
    pairs = store.edge_label_index
    pos = torch.stack([batch[USER].n_id[pairs[0]], batch[ITEM].n_id[pairs[1]]])[:, labels == 1]
    assert _edges(pos) <= _edges(graph[REL].edge_index)
    for t in (USER, ITEM):
        assert len(batch[t].n_id) == len(torch.unique(batch[t].n_id))


def test_full_fanout_batch_equals_full_graph_encoder(
    data: GraphData, tiny_config: TrainConfig
) -> None:
    """With every neighbour sampled (fan-out -1 for both hops), DP-GCN's encoder on a batch
    gives its seeds (the batch's users and items) the vectors of the full-graph encoder."""
    torch.manual_seed(0)
    model = cast(DPGCN, build_model("dgcn", data, tiny_config))
    model.eval()
    x = model.embedding()
    full = model.gcn(x, model.stack)
    graph = train_graph(hetero_data_from_split(data.split))
    loader = make_link_loader(graph, REL, [-1, -1], batch_size=8, num_negatives=1)
    batch = next(iter(loader))
    h = model.gcn({t: x[t][batch[t].n_id] for t in batch.node_types}, batch.edge_index_dict)
    pairs = batch[REL].edge_label_index
    for t, rows in ((USER, pairs[0].unique()), (ITEM, pairs[1].unique())):
        assert torch.allclose(h[t][rows], full[t][batch[t].n_id[rows]], atol=1e-5), t


def test_minibatch_epochs_lower_the_loss(data: GraphData, tiny_config: TrainConfig) -> None:
    torch.manual_seed(0)
    model = cast(DPGCN, build_model("dpgcn", data, tiny_config))
    graph = train_graph(hetero_data_from_split(data.split))
    pairs = torch.as_tensor(np.stack([data.split.train.row, data.split.train.col]))
    loader = make_link_loader(graph, REL, [5, 3], 32, num_negatives=4, label_index=pairs)
    assert len(loader.input_data.row) == len(data.split.train)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    assert model.fusion is not None
    trained = [*model.embedding.parameters(), *model.fusion.parameters()]
    before = [p.detach().clone() for p in trained]
    losses = [minibatch_epoch(model, loader, opt) for _ in range(6)]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]
    assert any(not torch.equal(a, b) for a, b in zip(before, trained, strict=True))
