"""PNN (Qu et al. 2016): inner products between field embeddings feed the MLP."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from training.dataset import GraphData
from training.models.base import RecModel, mlp, reset_mlp, rows, suggest_training
from training.models.behavior import BehaviorEncoding, BehaviorInput

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
        hist, mask = self.input.behaviour(enc, users, items)
        fields = torch.stack(
            [rows(enc.profile, users), BehaviorInput.mean_pool(hist, mask), rows(enc.item, items)],
            dim=1,
        )
        inner = fields @ fields.transpose(1, 2)
        a, b = torch.triu_indices(3, 3, offset=1)
        x = torch.cat([fields.flatten(1), inner[:, a, b]], dim=-1)
        return self.mlp(x).squeeze(-1)


def search_space(trial: optuna.Trial) -> dict[str, object]:
    """TrainConfig changes of one tuning trial for pnn: learning rate, weight decay, embedding
    size, dropout and negatives per positive (no graph layers)."""
    return suggest_training(trial)
