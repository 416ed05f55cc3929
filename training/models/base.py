"""The interface every recommender in the harness implements.

A model is trained on (user, item, label) triples with binary cross-entropy over sampled
negatives (paper eq. 7). Graph models propagate over the whole training graph once per
optimisation step in :meth:`RecModel.encode`; the result is reused for every pair scored in that
step (and, at evaluation, for every user).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor, nn

from training.dataset import GraphData

if TYPE_CHECKING:
    import optuna


@dataclass
class DotEncoding:
    """Dot-product model output: ``logit(u, i) = <user[u], item[i]> + bias``."""

    user: Tensor
    item: Tensor
    query: Tensor | None
    bias: Tensor
    #: Optional per-user state vector the DDPG policy starts from (the fused user embedding).
    user_state: Tensor | None = None


class RecModel(nn.Module):
    """Base class: ``encode`` once per step, then ``score`` user/item pairs (logits)."""

    #: Whether the model has a DDPG decision layer trained after the supervised stage.
    has_policy: bool = False
    #: Whether the model is trained by gradient descent (non-neural baselines are not).
    trainable: ClassVar[bool] = True
    #: Whether the model can score an item that has no training interaction from its side
    #: information alone (category, terms): the cold-item protocol reports "n/a" for models
    #: that cannot, instead of ranking those items at random.
    inductive: bool = False
    #: User–item pairs scored at once by the default :meth:`score_all` (bounds memory).
    pair_chunk: ClassVar[int] = 262_144

    def __init__(self, data: GraphData) -> None:
        super().__init__()
        self.n_users = data.n_users
        self.n_items = data.n_items
        self.n_queries = data.n_queries

    def encode(self) -> Any:
        """Whole-graph computation shared by all pairs of one step (``None`` if there is none)."""
        return None

    def score(self, enc: Any, users: Tensor, items: Tensor) -> Tensor:
        """Logits for pairs; ``users`` and ``items`` have the same shape."""
        raise NotImplementedError

    def score_all(self, enc: Any, users: Tensor) -> Tensor:
        """Logits ``[B, n_items]`` of every item for each user (chunked pair scoring)."""
        items = torch.arange(self.n_items, device=users.device)
        rows = []
        chunk = max(1, self.pair_chunk // max(self.n_items, 1))
        for start in range(0, len(users), chunk):
            u = users[start : start + chunk]
            uu = u[:, None].expand(-1, self.n_items)
            ii = items[None, :].expand(len(u), -1)
            rows.append(self.score(enc, uu.reshape(-1), ii.reshape(-1)).view(len(u), -1))
        return torch.cat(rows) if rows else torch.zeros(0, self.n_items, device=users.device)

    def state_keys(self, data: GraphData) -> dict[str, Any] | None:
        """What the per-row tensors of this model's state are indexed by (external node ids,
        side tokens), saved beside a served checkpoint so that a later export with new nodes can
        reuse the trained rows; ``None`` when the state has no per-node rows to move."""
        return None

    def penalty(self, enc: Any, users: Tensor, items: Tensor) -> Tensor | None:
        """An extra loss term for one training batch of scored pairs (for example an L2 penalty
        on the pairs' input embeddings), added to the BCE; ``None`` when the model has none."""
        return None

    def score_queries(self, enc: Any, users: Tensor, queries: Tensor) -> Tensor | None:
        """Logits of user → query pairs, or ``None`` when the model cannot rank queries."""
        return None

    def fit_statistics(self, data: GraphData) -> None:
        """Hook for non-neural baselines: compute their counts from the training split."""

    def use_graph(self, data: GraphData) -> None:
        """Propagate over another graph of the same nodes from now on (e.g. the complete
        graph, validation and test edges included, when exporting vectors for serving).
        Models without graph structure ignore it."""

    def dot_encoding(self, enc: Any) -> DotEncoding | None:
        """The model as user/item/query vectors for dot-product serving, if it has that form."""
        return None


class DotProductModel(RecModel):
    """A model whose ``encode`` returns a :class:`DotEncoding`."""

    def encode(self) -> DotEncoding:
        raise NotImplementedError

    def score(self, enc: DotEncoding, users: Tensor, items: Tensor) -> Tensor:
        return (rows(enc.user, users) * rows(enc.item, items)).sum(-1) + enc.bias

    def score_all(self, enc: DotEncoding, users: Tensor) -> Tensor:
        return rows(enc.user, users) @ enc.item.t() + enc.bias

    def score_queries(self, enc: DotEncoding, users: Tensor, queries: Tensor) -> Tensor | None:
        if enc.query is None:
            return None
        return (rows(enc.user, users) * rows(enc.query, queries)).sum(-1) + enc.bias

    def dot_encoding(self, enc: DotEncoding) -> DotEncoding:
        return enc


def rows(table: Tensor, index: Tensor) -> Tensor:
    """``table[index]`` through ``index_select``, whose backward (``index_add_``) sums the
    gradients of repeated rows in a fixed order. The backward of ``table[index]``
    (``index_put_(accumulate=True)``) runs in parallel on the CPU and adds them in a
    thread-dependent order, which made two runs of one seed drift apart (issue 21)."""
    return table.index_select(0, index.reshape(-1)).view(*index.shape, table.shape[-1])


def mlp(sizes: list[int], dropout: float = 0.0, last_activation: bool = False) -> nn.Sequential:
    """``Linear → ReLU → Dropout`` blocks (no activation after the last layer by default)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or last_activation:
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def reset_modules(modules: Iterable[nn.Module]) -> None:
    """Call ``reset_parameters()`` on every module that has one."""
    for m in modules:
        reset = getattr(m, "reset_parameters", None)
        if callable(reset):
            reset()


def reset_mlp(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Linear):
            m.reset_parameters()


def suggest_training(
    trial: optuna.Trial, *, max_layers: int = 0, dropout: bool = True
) -> dict[str, object]:
    """The TrainConfig ranges of one ``dpgcn tune`` trial that every model's ``search_space``
    shares (training/tuning.py, docs/tuning.md): learning rate, weight decay, embedding size,
    graph layers (1 to ``max_layers``, for models with layers), dropout (for models with
    dropout) and negatives per positive."""
    space: dict[str, object] = {
        "optim.lr": trial.suggest_float("optim.lr", 1e-4, 3e-2, log=True),
        "optim.weight_decay": trial.suggest_float("optim.weight_decay", 1e-8, 1e-3, log=True),
        "model.dim": trial.suggest_categorical("model.dim", [32, 64, 128]),
    }
    if max_layers:
        space["model.num_layers"] = trial.suggest_int("model.num_layers", 1, max_layers)
    if dropout:
        space["model.dropout"] = trial.suggest_float("model.dropout", 0.0, 0.5)
    # Up to 32 negatives, log-scaled: with 1-8 the best DP-GCN trials sat at the bound (6-8),
    # and 16 negatives raised its validation NDCG@10 (docs/tuning.md).
    space["optim.num_negatives"] = trial.suggest_int("optim.num_negatives", 1, 32, log=True)
    return space
