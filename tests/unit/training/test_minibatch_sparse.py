"""Sparse row gradients of the ID tables on the mini-batch path (training/loop.py
``optimizer_for``, ``SparseDenseAdam``): a step touches the rows its batch gathered only."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from training.checkpoint import Checkpointer, CheckpointError, LoopState, Trainer, fingerprint
from training.config import TrainConfig
from training.data import ITEM, USER
from training.dataset import GraphData
from training.loop import negative_pool
from training.minibatch import minibatch_loss, train_loader
from training.models import build_model
from training.models.dpgcn import DPGCN
from training.optim import SparseDenseAdam, optimizer_for, sparse_tables


def _setup(data: GraphData, config: TrainConfig, minibatch: bool):
    torch.manual_seed(0)
    model = build_model("dpgcn_no_ddpg", data, config)
    assert isinstance(model, DPGCN)
    return model, optimizer_for(model, config, minibatch=minibatch)


def _one_step(model: DPGCN, optimizer: torch.optim.Optimizer, data: GraphData, config: TrainConfig):
    loader = train_loader(data.split, config, negative_pool(model, data.split))
    batch = next(iter(loader))
    model.train()
    loss, _ = minibatch_loss(model, batch, loader.input_data.input_type)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    return batch


def test_a_minibatch_step_moves_only_the_gathered_rows(
    data: GraphData, tiny_config: TrainConfig
) -> None:
    config = tiny_config.replace(
        {"optim.batch_size": 8, "optim.fanout": (2,), "optim.num_negatives": 1}
    )
    model, optimizer = _setup(data, config, minibatch=True)
    assert isinstance(optimizer, SparseDenseAdam) and model.embedding.sparse
    before = {t: w.detach().clone() for t, w in _tables(model).items()}
    batch = _one_step(model, optimizer, data, config)
    for t, w in _tables(model).items():
        if t in batch.node_types:
            assert w.grad is not None and w.grad.is_sparse, t
    optimizer.step()
    for t in (USER, ITEM):
        gathered = torch.zeros(len(before[t]), dtype=torch.bool)
        gathered[batch[t].n_id] = True
        assert not gathered.all(), "the batch must leave some rows out for this test"
        moved = (_tables(model)[t] != before[t]).any(dim=1)
        assert moved[gathered].any(), t  # (rows on the unknown vector get a zero gradient)
        assert not moved[~gathered].any(), t


def test_full_batch_keeps_dense_adam(data: GraphData, tiny_config: TrainConfig) -> None:
    model, optimizer = _setup(data, tiny_config, minibatch=False)
    assert isinstance(optimizer, torch.optim.Adam) and not model.embedding.sparse


def test_weight_decay_reaches_the_gathered_rows(data: GraphData, tiny_config: TrainConfig) -> None:
    config = tiny_config.replace(
        {"optim.batch_size": 8, "optim.fanout": (2,), "optim.num_negatives": 1}
    )
    results = []
    for decay in (0.0, 0.5):
        model, optimizer = _setup(
            data, config.replace({"optim.weight_decay": decay}), minibatch=True
        )
        torch.manual_seed(1)
        _one_step(model, optimizer, data, config)
        optimizer.step()
        results.append(_tables(model)[USER].detach().clone())
    assert not torch.equal(results[0], results[1])


def test_state_dict_round_trip_and_a_foreign_state_refused(
    data: GraphData, tiny_config: TrainConfig, tmp_path: Path
) -> None:
    config = tiny_config.replace(
        {"optim.batch_size": 8, "optim.fanout": (2,), "optim.num_negatives": 1}
    )
    model, optimizer = _setup(data, config, minibatch=True)
    _one_step(model, optimizer, data, config)
    optimizer.step()
    assert isinstance(optimizer, SparseDenseAdam)
    state = optimizer.state_dict()
    assert set(state) == {"dense", "sparse"} and state["sparse"]["state"]
    again = SparseDenseAdam(
        [p for p in model.parameters() if all(p is not t for t in sparse_tables(model))],
        sparse_tables(model),
        config.optim.lr,
    )
    again.load_state_dict(state)
    assert again.state_dict()["sparse"]["state"].keys() == state["sparse"]["state"].keys()
    with pytest.raises(ValueError, match="SparseDenseAdam"):
        again.load_state_dict(torch.optim.Adam(model.parameters()).state_dict())

    # a checkpoint whose optimiser is plain Adam (e.g. written before) is refused clearly
    checkpoints = Checkpointer(tmp_path, config, fingerprint(data.split))
    adam = torch.optim.Adam(model.parameters())
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    checkpoints.save(LoopState(epoch=1), Trainer(model, adam, scaler, _rng()))
    with pytest.raises(CheckpointError, match="optimiser state"):
        checkpoints.restore(Trainer(model, optimizer, scaler, _rng()), torch.device("cpu"))


def _tables(model: DPGCN) -> dict[str, torch.Tensor]:
    return {t: e.weight for t, e in model.embedding.tables.items()}  # type: ignore[union-attr]


def _rng():
    import numpy as np

    return np.random.default_rng(0)
