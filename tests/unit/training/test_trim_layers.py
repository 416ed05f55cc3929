"""Per-layer trimming of the mini-batch encoder (issue 17): with the sampler's per-hop node
counts, ``HeteroGCN`` computes in each layer only the rows a later layer or the output reads
(``training.sparse.TrimmedStack``), and gives the seeds the vectors and input gradients of
the untrimmed encoder over the whole batch."""

from __future__ import annotations

from typing import cast

import pytest
import torch
from torch import Tensor

from training.config import TrainConfig
from training.data import ITEM, QUERY, USER, EdgeType
from training.dataset import GraphData
from training.hetero import hetero_data_from_split, train_graph
from training.minibatch import hop_counts, make_link_loader, minibatch_loss, train_loader
from training.models import build_model
from training.models.dpgcn import DPGCN
from training.sparse import TrimmedStack

REL = (USER, "CLICKED", ITEM)


def _model(data: GraphData, config: TrainConfig, layers: int, mean: str = "type") -> DPGCN:
    torch.manual_seed(0)
    config = config.replace(
        {
            "model.num_layers": layers,
            "model.dropout": 0.0,
            "model.dpgcn.relation_mean": mean,
            "model.dpgcn.cold_simulation": 0.0,
        }
    )
    return cast(DPGCN, build_model("dpgcn", data, config))


def _batch(data: GraphData, layers: int, seed: int = 0):  # type: ignore[no-untyped-def]
    """A sampled triplet batch, two neighbours per relation and hop (most of the tiny graph's
    neighbours are left out, so the hops differ)."""
    graph = train_graph(hetero_data_from_split(data.split))
    torch.manual_seed(seed)
    loader = make_link_loader(
        graph, REL, [2] * layers, batch_size=8, num_negatives=2, mode="triplet"
    )
    return next(iter(loader))


def _both(
    model: DPGCN,
    batch,
    edges: dict[EdgeType, Tensor],  # type: ignore[no-untyped-def]
) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Tensor], dict[str, Tensor]]:
    """Seeds' outputs and input gradients of the untrimmed and the trimmed encoder, for the
    same weighted sum of the seeds' outputs."""
    counts = hop_counts(batch)
    assert counts is not None
    base = model.inputs({t: batch[t].n_id for t in batch.node_types})
    seeds = {t: counts[t][0] for t in model.gcn.output_types}
    weight = {t: torch.randn(n, model.gcn.dim) for t, n in seeds.items()}
    out, grads = [], []
    for trim in (None, counts):
        x = {t: v.detach().clone().requires_grad_() for t, v in base.items()}
        h = model.gcn(x, edges, trim)
        h = {t: v[: seeds[t]] for t, v in h.items()}
        torch.stack([(h[t] * weight[t]).sum() for t in h]).sum().backward()
        out.append(h)
        grads.append(
            {t: v.grad if v.grad is not None else torch.zeros_like(v) for t, v in x.items()}
        )
    return out[0], out[1], grads[0], grads[1]


@pytest.mark.parametrize("mean", ["type", "node"])
@pytest.mark.parametrize("layers", [1, 2, 3])
def test_trimmed_seeds_equal_the_whole_batch(
    data: GraphData, tiny_config: TrainConfig, layers: int, mean: str
) -> None:
    model = _model(data, tiny_config, layers, mean)
    batch = _batch(data, layers)
    assert batch[QUERY].num_nodes and batch["Term"].num_nodes, "queries and terms in the batch"
    full, trimmed, g_full, g_trim = _both(model, batch, batch.edge_index_dict)
    for t in model.gcn.output_types:
        assert trimmed[t].shape == full[t].shape, t
        torch.testing.assert_close(trimmed[t], full[t], msg=t)
    assert any(float(g.abs().sum()) > 0 for g in g_full.values())
    for t, g in g_full.items():
        torch.testing.assert_close(g_trim[t], g, msg=t)


@pytest.mark.parametrize("layers", [2, 3])
def test_a_type_without_relations_keeps_its_vector(
    data: GraphData, tiny_config: TrainConfig, layers: int
) -> None:
    """Terms receive nothing here (their in-edges left out), so they keep their input vector
    in every layer (the encoder's keep term), and items hear those terms."""
    model = _model(data, tiny_config, layers)
    batch = _batch(data, layers, seed=3)
    edges = {et: ei for et, ei in batch.edge_index_dict.items() if et[2] != "Term"}
    assert any(et[0] == "Term" and ei.numel() for et, ei in edges.items())
    full, trimmed, g_full, g_trim = _both(model, batch, edges)
    for t in model.gcn.output_types:
        torch.testing.assert_close(trimmed[t], full[t], msg=t)
    assert float(g_full["Term"].abs().sum()) > 0
    for t, g in g_full.items():
        torch.testing.assert_close(g_trim[t], g, msg=t)


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_each_layer_computes_only_the_rows_read_later(data: GraphData, layers: int) -> None:
    """Layer ``l`` has the rows of hops ``<= L - 1 - l`` (the last: the output types' seeds)
    and reads the rows the layer before it computed."""
    model = _model(data, TrainConfig(), layers)
    batch = _batch(data, layers)
    counts = hop_counts(batch)
    assert counts is not None
    gcn = model.gcn
    stack = TrimmedStack.build(
        {et: ei for et, ei in batch.edge_index_dict.items() if et in gcn.edge_types},
        counts,
        gcn.node_types,
        layers,
        gcn.output_types,
        gcn.relation_counts,
    )
    assert len(stack.layers) == layers
    columns = sum(int(batch[t].num_nodes) for t in gcn.node_types)
    for layer, adj in enumerate(stack.layers):
        hop = layers - 1 - layer
        types = gcn.output_types if hop == 0 else gcn.node_types
        rows = sum(sum(counts[t][: hop + 1]) for t in types if t in counts)
        assert adj.shape == (rows, columns), layer
        columns = rows
    assert (
        stack.layers[-1].shape[0]
        == sum(stack.seeds)
        < sum(int(batch[t].num_nodes) for t in (USER, ITEM))
    )


def test_a_batch_not_numbered_by_hop_is_refused(data: GraphData) -> None:
    model = _model(data, TrainConfig(), 2)
    batch = _batch(data, 2)
    x = model.inputs({t: batch[t].n_id for t in batch.node_types})
    wrong = {t: [1, 0, int(batch[t].num_nodes) - 1] for t in batch.node_types}
    with pytest.raises(ValueError, match="numbered by hop"):
        model.gcn(x, batch.edge_index_dict, wrong)


def test_the_minibatch_step_trims_and_keeps_the_loss(
    data: GraphData, tiny_config: TrainConfig
) -> None:
    """``minibatch_loss`` runs the trimmed encoder (its outputs are the seeds alone) and
    gives the loss and gradients of the untrimmed one, also with the cold-start simulation
    dropping items' edges (the same draw: the encoder takes no random numbers)."""
    config = tiny_config.replace(
        {"model.num_layers": 2, "model.dropout": 0.0, "model.dpgcn.cold_simulation": 0.3}
    )
    torch.manual_seed(0)
    model = cast(DPGCN, build_model("dpgcn", data, config))
    assert model.cold_simulation > 0
    torch.manual_seed(5)
    batch = next(iter(train_loader(data.split, config)))
    counts = hop_counts(batch)
    assert counts is not None
    rows: list[int] = []
    hook = model.gcn.register_forward_hook(lambda _m, _a, h: rows.append(len(h[USER])))
    results = []
    for trim in (True, False):
        if not trim:  # the batch as a sampler without hop counts returns it
            for t in batch.node_types:
                del batch[t].num_sampled_nodes
        torch.manual_seed(7)
        loss, _ = minibatch_loss(model, batch, REL)
        model.zero_grad()
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results.append((loss.detach(), grads))
    hook.remove()
    assert rows == [counts[USER][0], int(batch[USER].num_nodes)] and rows[0] < rows[1]
    (loss_t, grads_t), (loss_f, grads_f) = results
    torch.testing.assert_close(loss_t, loss_f)
    assert set(grads_t) == set(grads_f)
    for name, grad in grads_f.items():
        torch.testing.assert_close(grads_t[name], grad, msg=name)
