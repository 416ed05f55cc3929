"""ItemKNN: item–item cosine similarity over training interactions."""

from __future__ import annotations

import torch
from torch import Tensor

from training.dataset import GraphData
from training.errors import TrainingError
from training.models.base import RecModel

#: Above this many items the dense similarity matrix would not fit comfortably in memory.
MAX_ITEMS = 30_000


class ItemKNN(RecModel):
    r"""Item-based collaborative filtering (Sarwar et al. 2001) with cosine similarity on the
    binary user–item training matrix :math:`\mathbf{R}`:

    .. math::
        S_{ij} = \frac{\mathbf{r}_i^\top \mathbf{r}_j}{\|\mathbf{r}_i\|\|\mathbf{r}_j\|}
        \;(S_{ii} = 0), \qquad s_{ui} = \sum_{j \in H_u} S_{ji}

    where :math:`H_u` are the user's training items; a tiny popularity term breaks ties.

    Args:
        data (GraphData): Training data.

    Shapes:
        - **input:** users :math:`(B,)`, items :math:`(B,)`
        - **output:** scores :math:`(B,)`
    """

    trainable = False
    similarity: Tensor
    popularity: Tensor

    def __init__(self, data: GraphData) -> None:
        super().__init__(data)
        if data.n_items > MAX_ITEMS:
            raise TrainingError(f"ItemKNN supports at most {MAX_ITEMS} items")
        self.indptr = torch.as_tensor(data.split.history_indptr, device=data.device)
        self.items = torch.as_tensor(data.split.history_items, device=data.device)
        self.register_buffer("similarity", torch.zeros(data.n_items, data.n_items))
        self.register_buffer("popularity", torch.zeros(data.n_items))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.similarity.zero_()
        self.popularity.zero_()

    def fit_statistics(self, data: GraphData) -> None:
        _, ui = data.homogeneous_user_item()
        r = torch.zeros(data.n_users, data.n_items, device=ui.device)
        r[ui[0], ui[1]] = 1.0
        norms = r.norm(dim=0).clamp(min=1e-12)
        s = (r.t() @ r) / norms[:, None] / norms[None, :]
        s.fill_diagonal_(0.0)
        self.similarity.copy_(s)
        self.popularity.copy_(r.sum(0) / max(data.n_users, 1) * 1e-6)

    def _profile(self, users: Tensor) -> Tensor:
        rows = torch.zeros(len(users), self.n_items, device=users.device)
        for b, u in enumerate(users.tolist()):
            rows[b, self.items[self.indptr[u] : self.indptr[u + 1]]] = 1.0
        return rows

    def score_all(self, enc: None, users: Tensor) -> Tensor:
        return self._profile(users) @ self.similarity + self.popularity

    def score(self, enc: None, users: Tensor, items: Tensor) -> Tensor:
        uniq, inv = torch.unique(users, return_inverse=True)
        out = torch.empty(len(users), device=users.device)
        for start in range(0, len(uniq), 512):
            block = uniq[start : start + 512]
            scores = self.score_all(None, block)
            sel = (inv >= start) & (inv < start + len(block))
            out[sel] = scores[inv[sel] - start, items[sel]]
        return out
