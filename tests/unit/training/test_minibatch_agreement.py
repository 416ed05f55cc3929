"""The mini-batch step computes the full-batch step when nothing is sampled away (issue 17:
"both paths give the same NDCG@10"): with fan-out -1 and every training pair in one batch,
``DPGCN.encode_batch`` gives the seeds the vectors of ``DPGCN.encode`` and the batch's loss
the gradient of the same pairs' full-batch loss; and the loader's negatives follow the
full-batch rule (never one of the user's training items)."""

from __future__ import annotations

from typing import cast

import numpy as np
import pytest
import torch
from torch_geometric.sampler import NegativeSampling

from training.config import TrainConfig
from training.data import ITEM, USER
from training.dataset import GraphData
from training.errors import ConfigError
from training.hetero import hetero_data_from_split, train_graph
from training.loop import batch_loss
from training.minibatch import (
    TrainingNegatives,
    _labelled_pairs,
    make_link_loader,
    minibatch_loss,
    structure,
    train_loader,
)
from training.models import build_model
from training.models.dpgcn import DPGCN


def _model(data: GraphData, config: TrainConfig) -> DPGCN:
    torch.manual_seed(0)
    model = cast(DPGCN, build_model("dpgcn", data, config))
    assert model.fusion is not None and model.fusion.embed is not None, "user features fused"
    assert model.embedding.side, "items and queries carry side information"
    return model


def _whole_batch(data: GraphData, config: TrainConfig):  # type: ignore[no-untyped-def]
    """One loader batch holding every training pair, every neighbour sampled."""
    full = config.replace(
        {
            "optim.fanout": (-1,),
            "optim.batch_size": len(data.split.train) + 1,
            "optim.num_negatives": 2,
        }
    )
    torch.manual_seed(1)
    batches = list(train_loader(data.split, full))
    assert len(batches) == 1
    return batches[0]


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_whole_graph_batch_gives_the_full_batch_vectors(
    data: GraphData, tiny_config: TrainConfig, layers: int
) -> None:
    config = tiny_config.replace({"model.num_layers": layers, "model.dpgcn.cold_simulation": 0.0})
    model = _model(data, config)
    model.eval()
    batch = _whole_batch(data, config)
    with torch.no_grad():
        full = model.encode()
        part = model.encode_batch(
            {t: batch[t].n_id for t in batch.node_types}, batch.edge_index_dict
        )
    pairs, _ = _labelled_pairs(batch, next(et for et in batch.edge_types if et[0] == USER))
    users, items = pairs[0].unique(), pairs[1].unique()
    assert set(batch[USER].n_id[users].tolist()) == set(data.split.train.row.tolist())
    assert set(batch[ITEM].n_id[items].tolist()) >= set(data.split.train.col.tolist())
    torch.testing.assert_close(part.user[users], full.user[batch[USER].n_id[users]])
    torch.testing.assert_close(part.item[items], full.item[batch[ITEM].n_id[items]])
    torch.testing.assert_close(part.bias, full.bias)


def test_whole_graph_batch_step_has_the_full_batch_gradient(
    data: GraphData, tiny_config: TrainConfig
) -> None:
    """The same labelled pairs scored through ``minibatch_loss`` (batch-local rows) and
    through the full-batch ``batch_loss`` (global rows) give the same loss and the same
    gradient of every parameter (ID tables, side projections, the feature vectors)."""
    config = tiny_config.replace(
        {"model.num_layers": 2, "model.dpgcn.cold_simulation": 0.0, "model.query_loss_weight": 0.0}
    )
    model = _model(data, config)
    model.eval()  # no dropout: both passes see the same network
    batch = _whole_batch(data, config)
    et = next(et for et in batch.edge_types if et[0] == USER and et[2] == ITEM)
    loss_b, _ = minibatch_loss(model, batch, et)
    model.zero_grad()
    loss_b.backward()
    grads_b = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    pairs, labels = _labelled_pairs(batch, et)
    n_pos = int(labels.sum())
    assert torch.all(labels[:n_pos] == 1)
    pair_u = batch[USER].n_id[pairs[0]].numpy()
    pair_i = batch[ITEM].n_id[pairs[1]].numpy()
    model.zero_grad()
    loss_f = batch_loss(model, pair_u, pair_i, n_pos, None, 0.0, torch.device("cpu"))
    loss_f.backward()
    grads_f = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    torch.testing.assert_close(loss_b, loss_f)
    assert set(grads_b) == set(grads_f) and "fusion.embed.weight" in grads_b
    for name, grad in grads_f.items():
        torch.testing.assert_close(grads_b[name], grad, msg=name)


def _negative_pairs(loader) -> set[tuple[int, int]]:  # type: ignore[no-untyped-def]
    out: set[tuple[int, int]] = set()
    for batch in loader:
        users = batch[USER].n_id[batch[USER].src_index]
        neg = batch[ITEM].n_id[batch[ITEM].dst_neg_index]
        k = neg.shape[1]
        out |= set(zip(users.repeat_interleave(k).tolist(), neg.reshape(-1).tolist(), strict=True))
    return out


def test_training_negatives_avoid_the_users_training_items(
    data: GraphData, tiny_config: TrainConfig
) -> None:
    """As the full-batch epoch (``sample_negatives`` with ``split.is_train``), the training
    loader never draws one of a user's training items as that user's negative; PyG's
    uniform triplet negatives do on this graph (a user has trained on a fifth of the items)."""
    split = data.split
    train = set(zip(split.train.row.tolist(), split.train.col.tolist(), strict=True))
    config = tiny_config.replace(
        {
            "optim.batch_size": 32,
            "optim.num_negatives": 4,
            "optim.fanout": (2,),
            "model.num_layers": 1,
        }
    )
    torch.manual_seed(0)
    drawn = _negative_pairs(train_loader(split, config))
    assert len(drawn) > len(train) // 2 and not drawn & train
    graph = structure(train_graph(hetero_data_from_split(split)))
    et = next(et for et in graph.edge_types if et[0] == USER and et[2] == ITEM)
    pairs = torch.as_tensor(np.stack([split.train.row, split.train.col]))
    torch.manual_seed(0)
    uniform = make_link_loader(graph, et, [2], 32, 4, label_index=pairs, mode="triplet")
    assert _negative_pairs(uniform) & train
    with pytest.raises(ConfigError, match="triplet"):
        make_link_loader(graph, et, [2], 32, 4, label_index=pairs, exclude=pairs)


def test_training_negatives_keep_a_draw_when_nothing_else_is_left() -> None:
    """A user who has every item keeps the draws after ``max_tries`` rounds (no endless loop),
    and the negatives of the other users still avoid their pairs."""
    users = torch.tensor([0, 1])
    positives = np.array([0, 1, 2, 1 * 3 + 0])  # user 0 has items 0-2, user 1 item 0
    negatives = TrainingNegatives(NegativeSampling("triplet", 3), users, positives, n_items=3)
    torch.manual_seed(0)
    out = negatives.sample(6, "dst", 3).reshape(2, 3)
    assert out.shape == (2, 3) and bool((out[1] != 0).all())
    assert negatives.is_positive(torch.tensor([0, 1, 1]), torch.tensor([2, 0, 2])).tolist() == [
        True,
        True,
        False,
    ]
