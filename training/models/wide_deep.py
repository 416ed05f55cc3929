"""Wide&Deep (Cheng et al. 2016): a linear model on sparse/cross features plus a deep MLP."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from training.dataset import GraphData
from training.models.base import RecModel, mlp, reset_mlp, rows, suggest_training
from training.models.behavior import RANK_PAIRS, BehaviorEncoding, BehaviorInput, rank_all_items
from training.models.embedding_mlp import deep_scores
from training.sparse import spmm

if TYPE_CHECKING:
    import optuna


class WideDeep(RecModel):
    r"""Wide&Deep (paper ref. [24]). The deep part is the Embedding&MLP network; the wide part
    is linear in memorisation features — item id, item categories, the static profile and the
    profile × category crosses:

    .. math::
        \hat y_{ui} = \sigma\Big(\underbrace{b_i + \bar b_{C(i)} + \mathbf{w}^\top\mathbf{s}_u
        + \mathbf{s}_u^\top \bar{\mathbf{W}}_{C(i)}}_{\text{wide}} +
        \underbrace{\mathrm{MLP}([\mathbf{p}_u \| \bar{\mathbf{e}}_{H_u} \| \mathbf{e}_i])}
        _{\text{deep}}\Big)

    where :math:`\bar b_{C(i)}`, :math:`\bar{\mathbf{W}}_{C(i)}` average per-category weights
    over the item's categories.

    Args:
        data (GraphData): Training data.
        dim (int): Embedding size :math:`D`.
        hidden (list[int]): Deep MLP hidden sizes.
        dropout (float, optional): MLP dropout. (default: :obj:`0.0`)

    Shapes:
        - **input:** users :math:`(B,)`, items :math:`(B,)`
        - **output:** logits :math:`(B,)`
    """

    pair_chunk = RANK_PAIRS

    def __init__(self, data: GraphData, dim: int, hidden: list[int], dropout: float = 0.0) -> None:
        super().__init__(data)
        f = max(data.user_feature_dim, 1)
        self.input = BehaviorInput(data, dim)
        self.deep = mlp([3 * dim, *hidden, 1], dropout=dropout)
        self.item_bias = nn.Embedding(data.n_items + 1, 1)
        self.cat_wide = nn.Embedding(max(data.n_categories, 1), 1 + f)
        self.user_linear = nn.Linear(f, 1, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.input.reset_parameters()
        reset_mlp(self.deep)
        nn.init.zeros_(self.item_bias.weight)
        nn.init.zeros_(self.cat_wide.weight)
        nn.init.zeros_(self.user_linear.weight)

    def encode(self) -> tuple[BehaviorEncoding, Tensor]:
        enc = self.input()
        wide_item = self.cat_wide.weight.new_zeros(self.n_items + 1, self.cat_wide.weight.shape[1])
        if self.input.cat_adj is not None:
            wide_item = torch.cat(
                [spmm(self.input.cat_adj, self.cat_wide.weight), wide_item[:1]], dim=0
            )
        return enc, wide_item

    def score(self, enc: tuple[BehaviorEncoding, Tensor], users: Tensor, items: Tensor) -> Tensor:
        b, wide_item = enc
        deep = self.deep(
            torch.cat(
                [rows(b.profile, users), self.input.pooled(b, users, items), rows(b.item, items)],
                -1,
            )
        ).squeeze(-1)
        x = self._user_x(users)
        w = rows(wide_item, items)
        wide = (
            self.item_bias(items).squeeze(-1)
            + w[:, 0]
            + self.user_linear(x).squeeze(-1)
            + (x * w[:, 1:]).sum(-1)
        )
        return wide + deep

    def score_all(self, enc: tuple[BehaviorEncoding, Tensor], users: Tensor) -> Tensor:
        """Every item for each user: the deep part as Embedding&MLP's ranking, the wide part
        as one ``[B, I]`` matrix product plus per-user and per-item terms."""
        b, wide_item = enc
        return rank_all_items(
            self.input,
            b,
            users,
            self.pair_chunk,
            lambda u: deep_scores(self.deep, b, self.input, u) + self._wide_block(wide_item, u),
            lambda u, i: self.score(enc, u, i),
        )

    def _user_x(self, users: Tensor) -> Tensor:
        x = self.input.user_x[users]
        return x.new_zeros(len(users), 1) if x.shape[1] == 0 else x

    def _wide_block(self, wide_item: Tensor, users: Tensor) -> Tensor:
        x = self._user_x(users)
        w = wide_item[:-1]
        per_item = self.item_bias.weight[:-1, 0] + w[:, 0]
        return per_item[None, :] + self.user_linear(x) + x @ w[:, 1:].t()


def search_space(trial: optuna.Trial) -> dict[str, object]:
    """TrainConfig changes of one tuning trial for wide_deep: learning rate, weight decay,
    embedding size, dropout and negatives per positive (no graph layers)."""
    return suggest_training(trial)
