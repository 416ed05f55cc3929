"""Embedding&MLP: the base model of the DIN paper (the paper's RelaImpr baseline)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from training.dataset import GraphData
from training.models.base import RecModel, mlp, reset_mlp, rows, suggest_training
from training.models.behavior import (
    RANK_PAIRS,
    BehaviorEncoding,
    BehaviorInput,
    first_layer,
    rank_all_items,
)

if TYPE_CHECKING:
    import optuna


class EmbeddingMLP(RecModel):
    r"""Embedding&MLP (Zhou et al. 2018, "base model"; paper ref. [10]): embeddings of the
    profile, the mean-pooled behaviour sequence and the candidate item, concatenated into an MLP:

    .. math::
        \hat y_{ui} = \sigma\Big(\mathrm{MLP}\big([\,\mathbf{p}_u \,\|\,
        \tfrac{1}{|H_u|}\textstyle\sum_{j \in H_u}\mathbf{e}_j \,\|\, \mathbf{e}_i\,]\big)\Big)

    Args:
        data (GraphData): Training data.
        dim (int): Embedding size :math:`D`.
        hidden (list[int]): MLP hidden sizes.
        dropout (float, optional): MLP dropout. (default: :obj:`0.0`)

    Shapes:
        - **input:** users :math:`(B,)`, items :math:`(B,)`
        - **output:** logits :math:`(B,)`
    """

    pair_chunk = RANK_PAIRS

    def __init__(self, data: GraphData, dim: int, hidden: list[int], dropout: float = 0.0) -> None:
        super().__init__(data)
        self.input = BehaviorInput(data, dim)
        self.mlp = mlp([3 * dim, *hidden, 1], dropout=dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.input.reset_parameters()
        reset_mlp(self.mlp)

    def encode(self) -> BehaviorEncoding:
        return self.input()

    def score(self, enc: BehaviorEncoding, users: Tensor, items: Tensor) -> Tensor:
        x = torch.cat(
            [rows(enc.profile, users), self.input.pooled(enc, users, items), rows(enc.item, items)],
            dim=-1,
        )
        return self.mlp(x).squeeze(-1)

    def score_all(self, enc: BehaviorEncoding, users: Tensor) -> Tensor:
        """Every item for each user: the MLP's first layer as a user part plus an item part
        (each computed once), the rest of the MLP on their broadcast sum."""
        return rank_all_items(
            self.input,
            enc,
            users,
            self.pair_chunk,
            lambda u: deep_scores(self.mlp, enc, self.input, u),
            lambda u, i: self.score(enc, u, i),
        )


def deep_scores(
    net: torch.nn.Sequential, enc: BehaviorEncoding, behavior: BehaviorInput, users: Tensor
) -> Tensor:
    """``[B, I]`` logits of ``net`` over ``[p_u ‖ mean history_u ‖ e_i]`` for every item,
    the first linear layer split into ``W_u [p_u ‖ h_u] + b`` and ``W_i e_i``."""
    first = net[0]
    assert isinstance(first, torch.nn.Linear)
    d = enc.item.shape[1]
    w_user, w_item = first_layer(first, 2 * d, d)
    user = torch.cat([rows(enc.profile, users), behavior.user_mean(enc, users)], -1)
    pre = (user @ w_user.t() + first.bias)[:, None, :] + (enc.item[:-1] @ w_item.t())[None]
    return net[1:](pre).squeeze(-1)


def search_space(trial: optuna.Trial) -> dict[str, object]:
    """TrainConfig changes of one tuning trial for embedding_mlp: learning rate, weight decay,
    embedding size, dropout and negatives per positive (no graph layers)."""
    return suggest_training(trial)
