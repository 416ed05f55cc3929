"""DIN (Zhou et al. 2018): attention of the behaviour sequence on the candidate item."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from training.dataset import GraphData
from training.errors import TrainingError
from training.models.base import RecModel, mlp, reset_mlp, rows, suggest_training
from training.models.behavior import BehaviorEncoding, BehaviorInput, first_layer

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
    #: Floats of one ranking block: users × items × (behaviours + 2 × embedding size).
    rank_block = 1 << 23
    #: Activation inputs of one block of the attention table (rows × candidates × hidden
    #: units): about 4 MiB, so that a block's passes stay in the cache.
    table_block = 1 << 20
    #: Entries of the ``[I + 1, I]`` attention table at most (4 GiB of float32): DIN ranks a
    #: catalogue of up to about 32k items; a larger one is refused when the model is built.
    max_table = 1 << 30

    def __init__(
        self,
        data: GraphData,
        dim: int,
        hidden: list[int],
        dropout: float = 0.0,
        attention_hidden: int = 32,
    ) -> None:
        entries = (data.n_items + 1) * data.n_items
        if entries > self.max_table:
            raise TrainingError(
                f"DIN ranks through an item-pair attention table of {entries * 4 / 2**30:.1f} "
                f"GiB for {data.n_items:,} items (limit {self.max_table * 4 / 2**30:.0f} GiB); "
                "leave DIN out of --models for this catalogue"
            )
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
        r"""Pairs, with the activation unit's first layer split as in :meth:`score_all`: the
        behaviour and candidate parts are per-item tables (computed once per call and
        gathered), only the :math:`\mathbf{e}_j \odot \mathbf{e}_i` term is per behaviour and
        pair (a quarter of the concatenated input's products)."""
        first = self.attention[0]
        assert isinstance(first, nn.Linear)
        d = enc.item.shape[1]
        a_hist, a_item, a_diff, a_prod = first_layer(first, d, d, d, d)
        seq = self.input.history[users]
        mask = (seq != self.n_items) & (seq != items[:, None])
        hist = rows(enc.item, seq)  # [P, L, D]
        cand = rows(enc.item, items)  # [P, D]
        per_hist = rows(enc.item @ (a_hist + a_diff).t(), seq)  # [P, L, A]
        per_item = cand @ (a_item - a_diff).t() + first.bias  # [P, A]
        pre = per_hist + per_item[:, None] + (hist * cand[:, None]) @ a_prod.t()
        weights = self.attention[1:](pre).squeeze(-1) * mask.to(hist.dtype)
        interest = (weights.unsqueeze(-1) * hist).sum(1)
        x = torch.cat([rows(enc.profile, users), interest, cand], dim=-1)
        return self.mlp(x).squeeze(-1)

    def score_all(self, enc: BehaviorEncoding, users: Tensor) -> Tensor:
        r"""Every item for each user. The activation unit's weight
        :math:`a(\mathbf{e}_j, \mathbf{e}_i)` depends on the two items only, not on the user:
        it is computed once per encoding for every (behaviour item, candidate) pair
        (:meth:`attention_table`, kept in ``enc.derived`` for the next blocks of users) and
        gathered by each user's sequence, instead of once per user, item and position. The
        output MLP's first layer is split by its inputs (profile, interest and item parts)."""
        d = enc.item.shape[1]
        item = enc.item[:-1]
        head = self.mlp[0]
        assert isinstance(head, nn.Linear)
        w_p, w_v, w_i = first_layer(head, d, d, d)
        head_item = item @ w_i.t()  # [I, H]
        table = enc.derived.get("din_attention")
        if table is None:
            table = enc.derived["din_attention"] = self.attention_table(enc)  # [I + 1, I]
        ids = torch.arange(self.n_items, device=users.device)
        # [block, L, I] weights and [block, I, D] interests at once
        width = self.n_items * (int(self.input.history.shape[1]) + 2 * d)
        chunk = max(1, self.rank_block // max(width, 1))
        out = []
        for start in range(0, len(users), chunk):
            u = users[start : start + chunk]
            seq = self.input.history[u]  # [B, L]
            hist = rows(enc.item, seq)  # [B, L, D]
            mask = (seq != self.n_items)[:, :, None] & (seq[:, :, None] != ids[None, None, :])
            weights = table[seq] * mask.to(table.dtype)  # [B, L, I]
            interest = weights.transpose(1, 2) @ hist  # [B, I, D]
            user = rows(enc.profile, u) @ w_p.t() + head.bias
            h = user[:, None] + interest @ w_v.t() + head_item[None]
            out.append(self.mlp[1:](h).squeeze(-1))
        return torch.cat(out) if out else item.new_zeros(0, self.n_items)

    def attention_table(self, enc: BehaviorEncoding) -> Tensor:
        r"""``[I + 1, I]`` activation-unit weight of behaviour item ``j`` (row; the last row is
        the padding index) for candidate ``i`` (column), in blocks of candidates of about
        :attr:`table_block` activation inputs. The unit's first layer is one matrix product
        per block: each behaviour item's row :math:`[\mathbf{e}_j \,\|\,
        (\mathbf{A}_1 + \mathbf{A}_3)\mathbf{e}_j + \mathbf{b}]` times each (candidate,
        hidden unit) column :math:`[\mathbf{e}_i \odot \mathbf{A}_{4,a} \,\|\,
        \mathbf{1}_a]` (the :math:`\mathbf{e}_j \odot \mathbf{e}_i` term and the behaviour
        part), plus the candidate part :math:`(\mathbf{A}_2 - \mathbf{A}_3)\mathbf{e}_i` as
        the product's added row."""
        first = self.attention[0]
        assert isinstance(first, nn.Linear)
        d = enc.item.shape[1]
        a_hist, a_item, a_diff, a_prod = first_layer(first, d, d, d, d)
        item = enc.item[:-1]
        n_att = first.out_features
        per_item = item @ (a_item - a_diff).t()  # [I, A]
        per_hist = enc.item @ (a_hist + a_diff).t() + first.bias  # [I + 1, A]
        left = torch.cat([enc.item, per_hist], dim=1)  # [I + 1, D + A]
        unit = torch.eye(n_att, dtype=item.dtype, device=item.device)
        n_rows = enc.item.shape[0]
        chunk = max(1, self.table_block // max(n_rows * n_att, 1))
        out = []
        for start in range(0, self.n_items, chunk):
            cand = item[start : start + chunk]  # [C, D]
            scaled = cand[:, None, :] * a_prod[None]  # [C, A, D]
            right = torch.cat([scaled, unit.expand(len(cand), -1, -1)], dim=2).flatten(0, 1)
            bias = per_item[start : start + chunk].reshape(1, -1)  # [1, C * A]
            pre = torch.addmm(bias, left, right.t()).view(n_rows, len(cand), n_att)
            out.append(self.attention[1:](pre).squeeze(-1))  # [I + 1, C]
        return torch.cat(out, dim=1)


def search_space(trial: optuna.Trial) -> dict[str, object]:
    """TrainConfig changes of one tuning trial for din: learning rate, weight decay, embedding
    size, dropout and negatives per positive (no graph layers)."""
    return suggest_training(trial)
