"""PNN (Qu et al. 2016): inner products between field embeddings feed the MLP."""

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


class PNN(RecModel):
    r"""Inner-product PNN (paper ref. [25]) over three fields — profile :math:`\mathbf{p}_u`,
    pooled behaviour :math:`\bar{\mathbf{e}}_{H_u}` and candidate :math:`\mathbf{e}_i`:

    .. math::
        \hat y_{ui} = \sigma\big(\mathrm{MLP}([\,\mathbf{f}_1 \| \mathbf{f}_2 \| \mathbf{f}_3 \|
        (\langle \mathbf{f}_a, \mathbf{f}_b \rangle)_{a < b}\,])\big)

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
        self.mlp = mlp([3 * dim + 3, *hidden, 1], dropout=dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.input.reset_parameters()
        reset_mlp(self.mlp)

    def encode(self) -> BehaviorEncoding:
        return self.input()

    def score(self, enc: BehaviorEncoding, users: Tensor, items: Tensor) -> Tensor:
        fields = torch.stack(
            [rows(enc.profile, users), self.input.pooled(enc, users, items), rows(enc.item, items)],
            dim=1,
        )
        inner = fields @ fields.transpose(1, 2)
        a, b = torch.triu_indices(3, 3, offset=1)
        x = torch.cat([fields.flatten(1), inner[:, a, b]], dim=-1)
        return self.mlp(x).squeeze(-1)

    def score_all(self, enc: BehaviorEncoding, users: Tensor) -> Tensor:
        """Every item for each user: the MLP's first layer as a user part (profile, pooled
        behaviour and their inner product), an item part, and the two user–item inner
        products as ``[B, I]`` matrix products; the rest of the MLP on their sum."""
        return rank_all_items(
            self.input,
            enc,
            users,
            self.pair_chunk,
            lambda u: self._block(enc, u),
            lambda u, i: self.score(enc, u, i),
        )

    def _block(self, enc: BehaviorEncoding, users: Tensor) -> Tensor:
        first = self.mlp[0]
        assert isinstance(first, torch.nn.Linear)
        d = enc.item.shape[1]
        w_p, w_h, w_i, w_ph, w_pi, w_hi = first_layer(first, d, d, d, 1, 1, 1)
        p, h = rows(enc.profile, users), self.input.user_mean(enc, users)
        item = enc.item[:-1]
        user = p @ w_p.t() + h @ w_h.t() + (p * h).sum(-1, keepdim=True) * w_ph.t() + first.bias
        pre = user[:, None, :] + (item @ w_i.t())[None]
        pre = pre + (p @ item.t())[..., None] * w_pi[:, 0] + (h @ item.t())[..., None] * w_hi[:, 0]
        return self.mlp[1:](pre).squeeze(-1)


def search_space(trial: optuna.Trial) -> dict[str, object]:
    """TrainConfig changes of one tuning trial for pnn: learning rate, weight decay, embedding
    size, dropout and negatives per positive (no graph layers)."""
    return suggest_training(trial)
