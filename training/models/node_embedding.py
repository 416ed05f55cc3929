"""Initial node embeddings of the heterogeneous graph (DP-GCN input layer)."""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from training.dataset import SideBag
from training.sparse import Adjacency, spmm


class SideProjection(nn.Module):
    r"""A learned projection of one node type's side information:

    .. math::
        \mathbf{s}_v = \sum_{g} \frac{1}{|T_g(v)|} \sum_{k \in T_g(v)} \mathbf{E}^{side}[k]

    with :math:`T_g(v)` the node's tokens of group :math:`g` (an item's category path, its
    terms, its price bucket; a query's terms) embedded by one :class:`torch.nn.EmbeddingBag`.
    (A user's static features are summed into its vector the same way, by
    :class:`~training.models.feature_fusion.FeatureFusion`.)

    The token vectors are stored divided by ``scale`` and multiplied back in
    :meth:`forward` (initial output :math:`\mathcal{N}(0, 0.1^2)` per token either way):
    Adam's step is about the learning rate per parameter whatever the gradient's size, so the
    side path moves ``scale`` times faster than the ID rows, the rate it needs when it alone
    must score an item without interactions (docs/model.md, "Cold items on the warm items'
    scale").

    For the whole type (:meth:`forward` without ``rows``) the bags are one sparse matrix
    :math:`\mathbf{B}` (node × token, the weights times ``scale``) built once per
    :class:`~training.dataset.SideBag` (:func:`bag_matrix`), and the output is
    :math:`\mathbf{B}\mathbf{E}^{side}` through :func:`~training.sparse.spmm`, whose backward
    reuses :math:`\mathbf{B}`'s cached transpose; :class:`torch.nn.EmbeddingBag`, used for
    chosen rows, sorts every token again in each backward.

    Args:
        num_tokens (int): Size of the token vocabulary.
        dim (int): Output size :math:`D`.
        scale (float, optional): Learning-rate multiplier of the token vectors (through the
            parametrisation above). (default: :obj:`1.0`)

    Shapes:
        - **input:** a :class:`~training.dataset.SideBag` of :math:`N` nodes
        - **output:** :math:`(N, D)`
    """

    def __init__(self, num_tokens: int, dim: int, scale: float = 1.0) -> None:
        super().__init__()
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.num_tokens = num_tokens
        self.scale = scale
        self.bag = nn.EmbeddingBag(num_tokens, dim, mode="sum")
        #: The bag whose :func:`bag_matrix` is cached, and that matrix.
        self._matrix: tuple[SideBag, Adjacency] | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.bag.weight, std=0.1 / self.scale)

    def forward(self, bag: SideBag, rows: Tensor | None = None) -> Tensor:
        """The projection of every node of ``bag``, or of the nodes ``rows`` only (their
        tokens gathered by :func:`bag_rows`: the cost of those rows, not of the whole type)."""
        if rows is None:
            if self._matrix is None or self._matrix[0] is not bag:
                self._matrix = (bag, bag_matrix(bag, self.scale))
            return spmm(self._matrix[1], self.bag.weight)
        tokens, offsets, weights = bag_rows(bag, rows)
        out = cast(Tensor, self.bag(tokens, offsets, per_sample_weights=weights))
        return out * self.scale if self.scale != 1.0 else out

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(tokens={self.num_tokens}, scale={self.scale})"


def bag_matrix(bag: SideBag, scale: float = 1.0) -> Adjacency:
    """The bags of ``bag`` as a sparse ``[nodes, tokens]`` matrix (entry: the token's weight
    times ``scale``, repeated tokens of a node summed) with its transpose, so that the matrix
    times the token vectors is :class:`torch.nn.EmbeddingBag`'s ``"sum"`` with
    ``per_sample_weights`` (times ``scale``)."""
    n = len(bag.offsets)
    ends = torch.cat([bag.offsets[1:], bag.offsets.new_tensor([len(bag.tokens)])])[:n]
    row = torch.repeat_interleave(torch.arange(n, device=bag.tokens.device), ends - bag.offsets)
    values = bag.weights.float() * scale
    return Adjacency.from_entries(row, bag.tokens.long(), values, (n, bag.num_tokens))


def bag_rows(bag: SideBag, rows: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``tokens``, ``offsets`` and ``weights`` of the bags of nodes ``rows`` alone, in that
    order (the input of :class:`torch.nn.EmbeddingBag`): each row's token range
    ``[offsets[v], offsets[v + 1])`` gathered, in ``O(len(rows) + their tokens)``."""
    n = len(bag.offsets)
    start = bag.offsets[rows]
    following = bag.offsets[(rows + 1).clamp(max=max(n - 1, 0))]
    end = torch.where(rows + 1 < n, following, torch.full_like(start, len(bag.tokens)))
    length = end - start
    offsets = torch.cumsum(length, 0) - length
    pos = torch.repeat_interleave(start - offsets, length)
    pos = pos + torch.arange(len(pos), device=pos.device)
    return bag.tokens[pos], offsets, bag.weights[pos]


class NodeEmbedding(nn.Module):
    r"""Trainable initial embeddings, one table per node type (paper §3.3: "initial embeddings
    for users, items and queries using pre-trained vectors or random initialization with the
    same dimensionality"), made inductive by side information:

    .. math::
        \mathbf{x}^{(0)}_v = m_v\,\mathbf{E}_{\tau(v)}[v] + (1 - m_v)\,\mathbf{e}^{unk}_{\tau(v)}
        + \mathbf{s}_v

    where :math:`\tau(v)` is the node type (User, Item, Query, Term, Category) and
    :math:`\mathbf{s}_v` the :class:`SideProjection` of the node's side information (zero for
    types without any). :math:`m_v = 1` for nodes with training interactions and
    :math:`m_v = 0` for the others, whose ID rows are never trained: they take the type's
    learned "unknown" vector :math:`\mathbf{e}^{unk}_{\tau}` instead, so an item unseen in
    training gets its vector from its category path, terms and graph neighbours. In training
    mode :math:`m_v` is also set to 0 with probability ``id_dropout`` (ID dropout, re-drawn at
    every call), so the unknown vector and the side path learn to stand in for the ID.
    :meth:`forward`'s ``cold`` sets :math:`m_v = 0` for chosen nodes (the cold-start
    simulation of :class:`~training.models.dpgcn.DPGCN`, which also drops their interaction
    edges for that step). Types listed in neither ``trained`` nor ``side`` are plain tables,
    as before.

    Tables listed in ``pretrained`` (e.g. Term vectors from :mod:`training.word2vec`) start
    from those vectors and stay trainable; the others start from :math:`\mathcal{N}(0, 0.1^2)`.

    Args:
        num_nodes (dict[str, int]): Number of nodes per node type.
        dim (int): Embedding dimension :math:`D` (paper: 128).
        pretrained (dict[str, Tensor], optional): Initial vectors ``[N_t, D]`` per node type.
        trained (dict[str, Tensor], optional): ``[N_t]`` bool per node type: the node has
            training interactions (saved with the model as buffers ``trained_<type>``).
        side (dict[str, SideBag], optional): Multi-hot side information per node type.
        id_dropout (float, optional): Probability of replacing a trained node's ID vector by
            the unknown vector in training mode. (default: :obj:`0.0`)
        side_scale (float, optional): Learning-rate multiplier of the side-information
            token vectors (:class:`SideProjection`'s ``scale``). (default: :obj:`1.0`)

    Shapes:
        - **output:** ``x_dict`` with :math:`(|\mathcal{V}_t|, D)` per node type :math:`t`.
    """

    def __init__(
        self,
        num_nodes: dict[str, int],
        dim: int,
        pretrained: dict[str, Tensor] | None = None,
        trained: dict[str, Tensor] | None = None,
        side: dict[str, SideBag] | None = None,
        id_dropout: float = 0.0,
        side_scale: float = 1.0,
    ) -> None:
        super().__init__()
        if not 0.0 <= id_dropout < 1.0:
            raise ValueError(f"id_dropout must be in [0, 1), got {id_dropout}")
        self.num_nodes = {t: n for t, n in num_nodes.items() if n > 0}
        self.dim = dim
        self.id_dropout = id_dropout
        #: Gather the ID rows of :meth:`forward`'s ``n_id`` with a sparse gradient (only the
        #: gathered rows, for ``torch.optim.SparseAdam``; set by the mini-batch training loop).
        self.sparse = False
        self.pretrained = dict(pretrained or {})
        for t, v in self.pretrained.items():
            if t in self.num_nodes and tuple(v.shape) != (self.num_nodes[t], dim):
                raise ValueError(f"pretrained {t} vectors have shape {tuple(v.shape)}")
        self.tables = nn.ModuleDict({t: nn.Embedding(n, dim) for t, n in self.num_nodes.items()})
        self.trained_types = [t for t in (trained or {}) if t in self.num_nodes]
        for t in self.trained_types:
            mask = cast(dict[str, Tensor], trained)[t].bool()
            n = self.num_nodes[t]
            if len(mask) > n:
                raise ValueError(f"trained mask of {t} has {len(mask)} rows for {n} nodes")
            if len(mask) < n:  # padding rows (empty types hold one row) are never trained
                mask = torch.cat([mask, mask.new_zeros(n - len(mask))])
            self.register_buffer(f"trained_{t}", mask)
        self.unknown = nn.ParameterDict(
            {t: nn.Parameter(torch.zeros(dim)) for t in self.trained_types}
        )
        self.side = {
            t: b for t, b in (side or {}).items() if t in self.num_nodes and b.num_tokens > 0
        }
        self.projections = nn.ModuleDict(
            {t: SideProjection(self.side[t].num_tokens, dim, side_scale) for t in sorted(self.side)}
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for t, table in self.tables.items():
            weight = cast(nn.Embedding, table).weight
            if t in self.pretrained:
                with torch.no_grad():
                    weight.copy_(self.pretrained[t])
            else:
                nn.init.normal_(weight, std=0.1)
        for p in self.unknown.values():
            nn.init.zeros_(p)
        for proj in self.projections.values():
            cast(SideProjection, proj).reset_parameters()

    def trained_mask(self, node_type: str) -> Tensor | None:
        """``[N]`` bool: which nodes of ``node_type`` had training interactions (``None`` for
        a type without the distinction)."""
        if node_type not in self.trained_types:
            return None
        return cast(Tensor, getattr(self, f"trained_{node_type}"))

    def forward(
        self, n_id: dict[str, Tensor] | None = None, cold: dict[str, Tensor] | None = None
    ) -> dict[str, Tensor]:
        """The input vectors of every node, or with ``n_id`` (node type → row ids, e.g. a
        mini-batch's ``batch[t].n_id``) those of the listed nodes only, in that order (types
        missing from ``n_id`` left out): ``forward()[t][n_id[t]]``, computed for those rows
        alone (ID dropout drawn per listed row). ``cold`` (node type → bool per returned row)
        marks rows that take the unknown vector whatever their ``trained`` flag, in training
        and in eval mode (types with a ``trained`` mask only)."""
        out: dict[str, Tensor] = {}
        for t, table in self.tables.items():
            rows = None if n_id is None else n_id.get(t)
            if n_id is not None and rows is None:
                continue
            x = cast(nn.Embedding, table).weight
            x = x if rows is None else F.embedding(rows, x, sparse=self.sparse)
            mask = self.trained_mask(t)
            if mask is not None:
                mask = mask if rows is None else mask[rows]
                if self.training and self.id_dropout > 0:
                    keep = torch.rand(len(mask), device=mask.device) >= self.id_dropout
                    mask = mask & keep
                if cold is not None and t in cold:
                    mask = mask & ~cold[t]
                x = with_rows_replaced(x, ~mask, self.unknown[t])
            if t in self.projections:
                side = cast(SideProjection, self.projections[t])(self.side[t], rows)
                if len(side) < len(x):  # padding rows of an empty type
                    side = torch.cat([side, side.new_zeros(len(x) - len(side), self.dim)])
                x = x + side
            out[t] = x
        return out

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({self.num_nodes}, dim={self.dim}, "
            f"side={sorted(self.projections)}, id_dropout={self.id_dropout})"
        )


def with_rows_replaced(x: Tensor, rows: Tensor, vector: Tensor) -> Tensor:
    """``x`` with the rows that ``rows`` (bool per row) marks replaced by ``vector``:
    ``torch.where(rows[:, None], vector, x)``, written as an ``index_put`` of those rows so that
    the backward gathers the replaced rows' gradient for ``vector`` instead of reducing a
    masked copy of the whole ``x``'s."""
    index = rows.nonzero().squeeze(1)
    return x.index_put((index,), vector.expand(len(index), -1))
