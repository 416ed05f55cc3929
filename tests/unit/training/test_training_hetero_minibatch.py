"""Neighbour-sampled mini-batch training (training/minibatch.py) on a small graph."""

from __future__ import annotations

from typing import cast

import numpy as np
import pytest
import torch

from training.config import TrainConfig
from training.data import ITEM, USER
from training.dataset import GraphData
from training.errors import ConfigError
from training.hetero import hetero_data_from_split, train_graph
from training.minibatch import (
    TorchNeighborSampler,
    fanout_by_relation,
    make_link_loader,
    minibatch_epoch,
    train_loader,
)
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
    batches = iter(loader)
    for batch in (next(batches), next(batches)):  # the second one after the sampler's reset
        for et in batch.edge_types:
            ei = batch[et].edge_index
            if ei.numel() == 0:
                continue
            src, dst = batch[et[0]].n_id[ei[0]], batch[et[2]].n_id[ei[1]]
            assert _edges(torch.stack([src, dst])) <= _edges(graph[et].edge_index), et
            assert torch.equal(graph[et].edge_index[:, batch[et].e_id], torch.stack([src, dst]))
            # no destination keeps more than the largest fan-out (2) per relation
            assert int(torch.bincount(ei[1]).max()) <= 2, et
        for t in batch.node_types:
            assert len(batch[t].n_id) == len(torch.unique(batch[t].n_id)), t
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
    (its input rows computed for the batch's nodes only, user features fused) gives its
    seeds (the batch's users and items) the vectors of the full-graph encoder."""
    torch.manual_seed(0)
    model = cast(DPGCN, build_model("dpgcn", data, tiny_config))
    model.eval()
    full = model.gcn(model.inputs(), model.stack)
    graph = train_graph(hetero_data_from_split(data.split))
    loader = make_link_loader(graph, REL, [-1, -1], batch_size=8, num_negatives=1)
    batch = next(iter(loader))
    h = model.gcn(model.inputs({t: batch[t].n_id for t in batch.node_types}), batch.edge_index_dict)
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


def test_inputs_of_some_rows_equal_those_rows_of_all_inputs(
    data: GraphData, tiny_config: TrainConfig
) -> None:
    """``DPGCN.inputs(n_id)`` (what a mini-batch step computes) gives the listed rows of
    ``inputs()``, in the listed order, side bags and fused user features included, and
    leaves out the types not listed; its gradient reaches only the listed ID rows."""
    torch.manual_seed(0)
    model = cast(DPGCN, build_model("dpgcn", data, tiny_config))
    model.eval()
    assert model.embedding.side, "the fixture's items carry side information"
    full = model.inputs()
    gen = torch.Generator().manual_seed(1)
    n_id = {
        t: torch.randperm(len(x), generator=gen)[: max(len(x) // 3, 1)] for t, x in full.items()
    }
    n_id = {t: torch.cat([rows, rows[:1]]) for t, rows in n_id.items()}  # a repeat, unsorted
    some = model.inputs(n_id)
    assert set(some) == set(full)
    for t, rows in n_id.items():
        assert torch.allclose(some[t], full[t][rows], atol=1e-6), t
    only = model.inputs({ITEM: n_id[ITEM]})
    assert set(only) == {ITEM} and torch.allclose(only[ITEM], full[ITEM][n_id[ITEM]], atol=1e-6)
    only[ITEM].sum().backward()
    table = model.embedding.tables[ITEM].weight
    assert table.grad is not None
    touched = table.grad.abs().sum(1).nonzero().flatten()
    assert set(touched.tolist()) <= set(n_id[ITEM].tolist())


def test_training_loader_draws_each_positives_negatives_for_its_own_user(
    data: GraphData, tiny_config: TrainConfig
) -> None:
    """``train_loader`` samples triplets (PyG's ``"triplet"`` mode): a batch names each
    positive's user, its item and ``num_negatives`` items for that same user, and adds no
    random users as ``"binary"`` sampling would."""
    config = tiny_config.replace(
        {"optim.batching": "minibatch", "optim.batch_size": 16, "optim.num_negatives": 3}
    )
    torch.manual_seed(0)
    batch = next(iter(train_loader(data.split, config)))
    et = next(et for et in batch.edge_types if et[0] == USER and et[2] == ITEM)
    assert "edge_label" not in batch[et]
    src, pos = batch[USER].src_index, batch[ITEM].dst_pos_index
    assert len(src) == len(pos) == 16
    assert batch[ITEM].dst_neg_index.shape == (16, 3)
    train = set(zip(data.split.train.row.tolist(), data.split.train.col.tolist(), strict=True))
    pairs = zip(batch[USER].n_id[src].tolist(), batch[ITEM].n_id[pos].tolist(), strict=True)
    assert set(pairs) <= train
    seeds = batch[USER].n_id[: len(src.unique())]  # the sampler's seed users come first
    assert set(seeds.tolist()) == set(batch[USER].n_id[src].tolist())


def test_fanout_is_shared_among_the_relations_into_a_type(
    data: GraphData, tiny_config: TrainConfig
) -> None:
    graph = train_graph(hetero_data_from_split(data.split))
    into: dict[str, int] = {}
    for et in graph.edge_types:
        into[et[2]] = into.get(et[2], 0) + 1
    assert max(into.values()) >= 3  # several relations reach a type in this graph
    per_type = fanout_by_relation(graph, [6, 2, -1])
    per_relation = fanout_by_relation(graph, [6, 2, -1], per="relation")
    for et in graph.edge_types:
        r = into[et[2]]
        assert per_type[et] == [-(-6 // r), -(-2 // r), -1], et
        assert per_relation[et] == [6, 2, -1], et
    with pytest.raises(ConfigError, match="per 'type' or per 'relation'"):
        fanout_by_relation(graph, [6], per="node")
    # the training loader draws per type: a node keeps at most ceil(k / R_t) per relation
    torch.manual_seed(0)
    config = tiny_config.replace(
        {"optim.batch_size": 32, "optim.fanout": (6, 2), "model.num_layers": 2}
    )
    batch = next(iter(train_loader(data.split, config)))
    for et in batch.edge_types:
        ei = batch[et].edge_index
        if ei.numel():
            assert int(torch.bincount(ei[1]).max()) <= -(-6 // into[et[2]]), et
    wide = next(iter(train_loader(data.split, config.replace({"optim.fanout_per": "relation"}))))
    assert sum(wide[et].edge_index.shape[1] for et in wide.edge_types) > sum(
        batch[et].edge_index.shape[1] for et in batch.edge_types
    )


def test_sampler_counts_each_hops_nodes_and_edges(data: GraphData) -> None:
    """The batch's ``num_sampled_nodes`` / ``num_sampled_edges`` (what PyG's ``trim_to_layer``
    reads): per type, the seeds then each hop's new nodes, in ``n_id`` order; per relation,
    each hop's edges, whose destinations are the nodes that hop started from and whose
    sources were reached by the end of it."""
    graph = train_graph(hetero_data_from_split(data.split))
    torch.manual_seed(0)
    loader = make_link_loader(graph, REL, [3, 2], batch_size=16, num_negatives=2, mode="triplet")
    if not isinstance(loader.link_sampler, TorchNeighborSampler):
        pytest.skip("pyg-lib's sampler counts its own hops")
    batch = next(iter(loader))
    hops = 2
    reached: dict[str, list[int]] = {}
    for t in batch.node_types:
        counts = batch[t].num_sampled_nodes
        assert len(counts) == hops + 1 and sum(counts) == len(batch[t].n_id), t
        reached[t] = np.cumsum(counts).tolist()
    seeds = torch.cat([batch[ITEM].dst_pos_index, batch[ITEM].dst_neg_index.reshape(-1)])
    assert int(batch[USER].src_index.max()) < reached[USER][0]  # the seeds come first
    assert int(seeds.max()) < reached[ITEM][0]
    sampled = 0
    for et in batch.edge_types:
        counts = batch[et].num_sampled_edges
        ei = batch[et].edge_index
        assert len(counts) == hops and sum(counts) == ei.shape[1], et
        start = 0
        for hop, n in enumerate(counts):
            src, dst = ei[:, start : start + n]
            first = reached[et[2]][hop - 1] if hop else 0
            assert bool(((dst >= first) & (dst < reached[et[2]][hop])).all()), (et, hop)
            assert bool((src < reached[et[0]][hop + 1]).all()), (et, hop)
            start += n
        sampled += ei.shape[1]
    assert sampled > 0 and any(batch[t].num_sampled_nodes[2] for t in batch.node_types)
