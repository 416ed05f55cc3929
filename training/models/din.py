"""DIN (Zhou et al. 2018): attention of the behaviour sequence on the candidate item."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from training.dataset import GraphData
from training.models.base import RecModel, mlp, reset_mlp, rows, suggest_training
from training.models.behavior import BehaviorEncoding, BehaviorInput

if TYPE_CHECKING:
    import optuna


class DIN(RecModel):
    r"""Deep Interest Network (paper ref. [26]). A local activation unit weighs each behaviour
    :math:`\mathbf{e}_j` by its relevance to the candidate :math:`\mathbf{e}_i` (weights are
    not softmax-normalised, as in DIN):

    .. math::
        \mathbf{v}_u(i) = \sum_{j \in H_u} a(\mathbf{e}_j, \mathbf{e}_i)\,\mathbf{e}_j, \quad
        a(\mathbf{e}_j, \mathbf{e}_i) = \mathrm{MLP}_{att}([\mathbf{e}_j \| \mathbf{e}_i \|
        \mathbf{e}_j - \mathbf{e}_i \| \mathbf{e}_j \odot \mathbf{e}_i])

    .. math::
        \hat y_{ui} = \sigma\big(\mathrm{MLP}([\,\mathbf{p}_u \| \mathbf{v}_u(i) \|
        \mathbf{e}_i\,])\big)

    Args:
        data (GraphData): Training data.
        dim (int): Embedding size :math:`D`.
        hidden (list[int]): MLP hidden sizes.
        dropout (float, optional): MLP dropout. (default: :obj:`0.0`)
        attention_hidden (int, optional): Hidden size of the activation unit.
            (default: :obj:`32`)

    Shapes:
        - **input:** users :math:`(B,)`, items :math:`(B,)`
        - **output:** logits :math:`(B,)`
    """

    #: Attention over the sequence makes each pair ~L times larger: score fewer at once.
    pair_chunk = 16_384

    def __init__(
        self,
        data: GraphData,
        dim: int,
        hidden: list[int],
        dropout: float = 0.0,
        attention_hidden: int = 32,
    ) -> None:
        super().__init__(data)
        self.input = BehaviorInput(data, dim)
        self.attention = nn.Sequential(
            nn.Linear(4 * dim, attention_hidden), nn.PReLU(), nn.Linear(attention_hidden, 1)
        )
        self.mlp = mlp([3 * dim, *hidden, 1], dropout=dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.input.reset_parameters()
        reset_mlp(self.attention)
        for m in self.attention.modules():
            if isinstance(m, nn.PReLU):
                m.reset_parameters()
        reset_mlp(self.mlp)

    def encode(self) -> BehaviorEncoding:
        return self.input()

    def score(self, enc: BehaviorEncoding, users: Tensor, items: Tensor) -> Tensor:
        hist, mask = self.input.behaviour(enc, users, items)
        cand = rows(enc.item, items).unsqueeze(1).expand_as(hist)
        weights = self.attention(torch.cat([hist, cand, hist - cand, hist * cand], -1))
        weights = weights.squeeze(-1) * mask.to(hist.dtype)
        interest = (weights.unsqueeze(-1) * hist).sum(1)
        x = torch.cat([rows(enc.profile, users), interest, rows(enc.item, items)], dim=-1)
        return self.mlp(x).squeeze(-1)


def search_space(trial: optuna.Trial) -> dict[str, object]:
    """TrainConfig changes of one tuning trial for din: learning rate, weight decay, embedding
    size, dropout and negatives per positive (no graph layers)."""
    return suggest_training(trial)
