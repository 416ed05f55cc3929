"""The optimisers of a fit: fused Adam, and :class:`SparseDenseAdam` for the mini-batch path,
whose ID tables get sparse gradients. Hand-written because torch has no optimiser that steps
dense and sparse parameters as one (``torch.optim.SparseAdam`` takes sparse gradients only)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, cast

import torch

from training.config import TrainConfig
from training.models.base import RecModel
from training.models.node_embedding import NodeEmbedding


def make_optimizer(
    params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    """Adam, with the fused kernel (one call for all parameters) where torch supports it."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError):  # pragma: no cover - old torch or unsupported device
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


class SparseDenseAdam(torch.optim.Optimizer):
    """Adam (:func:`make_optimizer`) for the parameters with dense gradients and
    :class:`torch.optim.SparseAdam` for the embedding tables whose gradients are sparse
    (``F.embedding(..., sparse=True)``), stepped together as one optimiser.

    A mini-batch step gathers a few thousand rows of tables with up to a million rows; with
    dense gradients, the backward writes a zero-filled gradient of every table and Adam then
    updates every row's moments, a cost per step that grows with the graph. Here the
    backward produces the gathered rows' gradients alone and SparseAdam updates those rows
    only ("lazy" Adam: a row's moments and value move only in the steps that gather it).
    ``weight_decay`` applies to the dense parameters as in Adam and, as an L2 term on the
    gathered rows, to the sparse tables (SparseAdam has no weight decay of its own).

    :attr:`param_groups` holds the two optimisers' groups (the same dictionaries, so a
    change of ``lr`` reaches them) and ``torch.amp.GradScaler`` steps it like any optimiser;
    :meth:`state_dict` holds both states (``{"dense": ..., "sparse": ...}``) for checkpoints.
    """

    def __init__(
        self,
        dense: Iterable[torch.nn.Parameter],
        sparse: Iterable[torch.nn.Parameter],
        lr: float,
        weight_decay: float = 0.0,
    ) -> None:
        dense, sparse = list(dense), list(sparse)
        if not dense or not sparse:
            raise ValueError("SparseDenseAdam needs dense and sparse parameters")
        super().__init__(dense + sparse, {"lr": lr})
        self.dense = make_optimizer(dense, lr, weight_decay)
        self.sparse = torch.optim.SparseAdam(sparse, lr=lr)
        self.weight_decay = weight_decay
        self.param_groups = [*self.dense.param_groups, *self.sparse.param_groups]

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if self.weight_decay:
            for p in self.sparse.param_groups[0]["params"]:
                if p.grad is not None:
                    g = p.grad.coalesce()
                    rows = g.indices()[0]
                    p.grad = torch.sparse_coo_tensor(
                        g.indices(),
                        g.values() + self.weight_decay * p[rows],
                        g.shape,
                        check_invariants=False,
                    )
        self.dense.step()
        self.sparse.step()
        return loss

    def state_dict(self) -> dict[str, Any]:
        return {"dense": self.dense.state_dict(), "sparse": self.sparse.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if set(state_dict) != {"dense", "sparse"}:
            raise ValueError("not a SparseDenseAdam state (keys 'dense' and 'sparse')")
        self.dense.load_state_dict(state_dict["dense"])
        self.sparse.load_state_dict(state_dict["sparse"])


def sparse_tables(model: RecModel) -> list[torch.nn.Parameter]:
    """The ID embedding tables of ``model`` that a mini-batch step can gather with sparse
    gradients (DP-GCN's :class:`~training.models.node_embedding.NodeEmbedding` tables)."""
    embedding = getattr(model, "embedding", None)
    if not isinstance(embedding, NodeEmbedding):
        return []
    tables = (cast(torch.nn.Embedding, table) for table in embedding.tables.values())
    return [cast(torch.nn.Parameter, table.weight) for table in tables]


def optimizer_for(model: RecModel, config: TrainConfig, minibatch: bool) -> torch.optim.Optimizer:
    """The optimiser of a fit: on the mini-batch path, :class:`SparseDenseAdam` with the ID
    tables gathered with sparse gradients (``NodeEmbedding.sparse``), so that a step costs
    the rows it gathers, not the tables' size; otherwise Adam over every parameter (a
    full-batch step computes every node's vector, so every table row gets a gradient and a
    sparse one would only add its indices)."""
    tables = sparse_tables(model) if minibatch else []
    embedding = getattr(model, "embedding", None)
    if isinstance(embedding, NodeEmbedding):
        embedding.sparse = bool(tables)
    if not tables:
        return make_optimizer(model.parameters(), config.optim.lr, config.optim.weight_decay)
    ids = {id(p) for p in tables}
    dense = [p for p in model.parameters() if id(p) not in ids]
    return SparseDenseAdam(dense, tables, config.optim.lr, config.optim.weight_decay)
