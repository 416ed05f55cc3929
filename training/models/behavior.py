"""Shared input layer of the DIN-family baselines (Embedding&MLP, Wide&Deep, PNN, DIN).

As in the DIN paper's base model: a candidate item is its id embedding plus the mean embedding
of its categories; a user is their static profile features (projected to ``D``) and their
behaviour sequence — the last ``L`` training items. No user-id embedding (the base models
represent users by profile and behaviour only).

The pooled behaviour of a (user, candidate) pair is the mean of the user's history without the
candidate, computed from the user's history sum (one sparse product per step) instead of
gathering ``L`` vectors per pair. A full ranking (:func:`rank_all_items`) splits the MLP's
first layer into a user part and an item part, each computed once, and adds them for a block
of users × every item; only the pairs whose candidate is in the user's history (at most ``L``
per user) go through :meth:`~training.models.base.RecModel.score`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from training.dataset import GraphData
from training.models.base import rows
from training.sparse import Adjacency, spmm


@dataclass
class BehaviorEncoding:
    #: ``[I + 1, D]`` item vectors; the last row (the padding index) is zero.
    item: Tensor
    #: ``[U, D]`` projected profile features (zeros without features).
    profile: Tensor
    #: ``[U, D]`` sum of the item vectors of each user's behaviour sequence.
    history_sum: Tensor
    #: Tables a model derives from this encoding once and reuses for every block of users it
    #: ranks (DIN's item-pair attention weights), by name.
    derived: dict[str, Tensor] = field(default_factory=dict)


class BehaviorInput(nn.Module):
    r"""Item, category and profile embeddings, and the behaviour sequence lookup.

    .. math::
        \mathbf{e}_i = \mathbf{E}^{item}_i + \frac{1}{|C(i)|}\sum_{c \in C(i)} \mathbf{E}^{cat}_c,
        \qquad \mathbf{p}_u = \mathbf{W}\mathbf{s}_u + \mathbf{b}

    Args:
        data (GraphData): Training data (item categories, user features, behaviour sequences).
        dim (int): Embedding size :math:`D`.

    Shapes:
        - **output of** :meth:`pooled`: :math:`(B, D)`, each pair's mean behaviour vector with
          the candidate item left out of its own history.
    """

    def __init__(self, data: GraphData, dim: int) -> None:
        super().__init__()
        self.n_items = data.n_items
        self.dim = dim
        self.feature_dim = data.user_feature_dim
        self.history = data.history
        self.user_x = data.user_x
        self.item_emb = nn.Embedding(data.n_items + 1, dim, padding_idx=data.n_items)
        n_cat = data.n_categories
        self.cat_emb = nn.Embedding(max(n_cat, 1), dim)
        self.cat_adj: Adjacency | None = None
        if n_cat and data.item_categories.numel():
            self.cat_adj = Adjacency.from_edge_index(
                data.item_categories.flip(0), n_cat, data.n_items, "mean"
            )
        self.profile = nn.Linear(max(self.feature_dim, 1), dim)
        valid = self.history != data.n_items
        #: ``[U, I]`` how often each item is in each user's behaviour sequence.
        self.history_adj = Adjacency.from_edge_index(
            torch.stack([self.history[valid], valid.nonzero()[:, 0]]),
            data.n_items,
            self.history.shape[0],
            "none",
        )
        #: ``[U, 1]`` length of each user's behaviour sequence (padding excluded).
        self.history_len = valid.sum(1, keepdim=True).float()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.item_emb.weight, std=0.1)
        with torch.no_grad():
            self.item_emb.weight[self.n_items].zero_()
        nn.init.normal_(self.cat_emb.weight, std=0.1)
        self.profile.reset_parameters()

    def forward(self) -> BehaviorEncoding:
        item = self.item_emb.weight
        if self.cat_adj is not None:
            cat = spmm(self.cat_adj, self.cat_emb.weight)
            item = item + torch.cat([cat, cat.new_zeros(1, self.dim)])
        if self.feature_dim:
            profile = self.profile(self.user_x)
        else:
            profile = self.profile.bias.expand(self.user_x.shape[0], -1)
        history_sum = spmm(self.history_adj, item[: self.n_items])
        return BehaviorEncoding(item=item, profile=profile, history_sum=history_sum)

    def pooled(self, enc: BehaviorEncoding, users: Tensor, items: Tensor) -> Tensor:
        r"""``[B, D]`` mean of each user's behaviour vectors without the candidate item (every
        occurrence of it; zeros for an empty sequence):
        :math:`(\mathbf{S}_u - c_{ui}\mathbf{e}_i) / \max(n_u - c_{ui}, 1)` with the history sum
        :math:`\mathbf{S}_u`, its length :math:`n_u` and :math:`c_{ui}` occurrences of ``i``."""
        same = (self.history[users] == items[:, None]).sum(1, keepdim=True).to(enc.item.dtype)
        total = rows(enc.history_sum, users) - same * rows(enc.item, items)
        return total / (rows(self.history_len, users) - same).clamp(min=1.0)

    def user_mean(self, enc: BehaviorEncoding, users: Tensor) -> Tensor:
        """``[B, D]`` mean of each user's whole behaviour sequence: :meth:`pooled` for every
        candidate outside the sequence."""
        return rows(enc.history_sum, users) / rows(self.history_len, users).clamp(min=1.0)

    def history_pairs(self, users: Tensor) -> tuple[Tensor, Tensor]:
        """``(b, item)``: each distinct item of the behaviour sequence of ``users[b]``."""
        hist = self.history[users]
        b = torch.arange(len(users), device=hist.device)[:, None].expand_as(hist)
        keep = hist != self.n_items
        key = torch.unique(b[keep] * self.n_items + hist[keep])
        return key // self.n_items, key % self.n_items


#: User–item pairs of one full-ranking block of Embedding&MLP, PNN and Wide&Deep (their
#: ``pair_chunk``): ``[block, I, hidden]`` activations of about 16 MiB at 64 hidden units
#: (the choice is measured in docs/benchmarks-training.md, section 6).
RANK_PAIRS = 65_536


def first_layer(layer: nn.Linear, *sizes: int) -> list[Tensor]:
    """The weight of ``layer`` split by input columns into blocks of ``sizes``."""
    return list(layer.weight.split(list(sizes), dim=1))


def rank_all_items(
    behavior: BehaviorInput,
    enc: BehaviorEncoding,
    users: Tensor,
    pair_chunk: int,
    block_scores: Callable[[Tensor], Tensor],
    score: Callable[[Tensor, Tensor], Tensor],
) -> Tensor:
    """``[B, I]`` logits of every item for ``users`` in blocks of about ``pair_chunk`` pairs.

    ``block_scores(users)`` gives a block's ``[b, I]`` logits computed with each user's whole
    sequence as the pooled behaviour (:meth:`BehaviorInput.user_mean`); the pairs whose
    candidate is in the sequence (:meth:`BehaviorInput.history_pairs`) are then scored again by
    ``score(users, items)`` (the pairwise path, which leaves the candidate out), so every entry
    equals ``score`` of its pair."""
    n_items = behavior.n_items
    chunk = max(1, pair_chunk // max(n_items, 1))
    out = []
    for start in range(0, len(users), chunk):
        block = users[start : start + chunk]
        s = block_scores(block)
        b, i = behavior.history_pairs(block)
        if len(b):
            s[b, i] = score(block[b], i).to(s.dtype)
        out.append(s)
    return torch.cat(out) if out else enc.item.new_zeros(0, n_items)
