"""Normalised sparse adjacency with a cached transpose, and its sparse × dense product.

On CPU, PyG's scatter-based message passing (``SAGEConv`` on an ``edge_index``) spends most of
its time in ``scatter_add``; a CSR sparse–dense product whose backward uses a precomputed
transposed CSR (instead of transposing on every step) is several times faster for the graphs
here (``docs/benchmarks.md``). The graph convolutions of this package aggregate through
:func:`spmm`, or, inside a PyG :class:`~torch_geometric.nn.conv.MessagePassing` layer's
``message_and_aggregate``, through :func:`spmm_t` on the ``adj_t`` that PyG hands over.

Both products are deterministic: each output row of a CSR × dense product is summed by one
thread in the row's column order, forward and backward (a unit test compares 1 and 2 threads).

:class:`ColdStartStack` switches chosen items' interaction edges (:func:`is_interaction`) off a
whole-graph :class:`RelationStack` at the cost of a few ``index_add_`` per training step (the
cold-start simulation of :class:`training.models.dpgcn.DPGCN`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal, overload

import torch
from torch import Tensor

from training.data import ITEM, QUERY, USER, EdgeType

#: Attribute under which a CSR matrix keeps its transposed CSR (see :func:`transpose_of`).
_TRANSPOSE_ATTR = "_cached_transpose"


def transpose_of(adj_t: Tensor) -> Tensor:
    """The transpose of the sparse matrix ``adj_t`` as CSR, computed once and kept on the
    ``adj_t`` object (PyG's ``torch_sparse.SparseTensor`` caches its transpose the same way).

    :class:`Adjacency` attaches its precomputed transpose to its matrix, so a layer that gets
    ``adjacency.matrix`` as PyG's ``adj_t`` finds it here without any work."""
    cached: Tensor | None = getattr(adj_t, _TRANSPOSE_ATTR, None)
    if cached is None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            coo = adj_t.to_sparse_coo() if adj_t.layout != torch.sparse_coo else adj_t
            cached = coo.t().coalesce().to_sparse_csr()
        setattr(adj_t, _TRANSPOSE_ATTR, cached)
    return cached


@dataclass
class Adjacency:
    """``matrix [n_dst, n_src]`` (CSR) and its transpose, with normalised values.

    ``matrix`` is PyG's ``adj_t`` of the messages ``src → dst`` (row = destination); it carries
    ``matrix_t`` as its cached transpose (:func:`transpose_of`)."""

    matrix: Tensor
    matrix_t: Tensor

    def __post_init__(self) -> None:
        setattr(self.matrix, _TRANSPOSE_ATTR, self.matrix_t)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.matrix.shape[0]), int(self.matrix.shape[1])

    @staticmethod
    def from_edge_index(
        edge_index: Tensor,
        num_src: int,
        num_dst: int,
        norm: str = "mean",
        weight: Tensor | None = None,
    ) -> Adjacency:
        """Adjacency of messages ``src → dst`` for ``edge_index = [src; dst]``.

        ``norm="mean"``: each row divided by the destination's degree (mean aggregation);
        ``norm="sym"``: :math:`D_{dst}^{-1/2} A D_{src}^{-1/2}` (GCN / LightGCN);
        ``norm="none"``: raw (weighted) sum.
        """
        src, dst = edge_index[0], edge_index[1]
        values = torch.ones(src.numel(), device=src.device) if weight is None else weight.float()
        deg_dst = torch.zeros(num_dst, device=src.device).index_add_(0, dst, values)
        deg_src = torch.zeros(num_src, device=src.device).index_add_(0, src, values)
        if norm == "mean":
            values = values / deg_dst.clamp(min=1e-12)[dst]
        elif norm == "sym":
            values = values * deg_dst.clamp(min=1e-12).rsqrt()[dst]
            values = values * deg_src.clamp(min=1e-12).rsqrt()[src]
        elif norm != "none":
            raise ValueError(f"unknown norm {norm!r}")
        return Adjacency.from_entries(dst, src, values, (num_dst, num_src))

    @staticmethod
    def from_entries(row: Tensor, col: Tensor, values: Tensor, shape: tuple[int, int]) -> Adjacency:
        """The ``shape`` matrix with ``values`` at ``(row, col)`` (repeated positions summed)
        and its transpose, as CSR: :func:`sorted_entries` and :func:`csr_of`, the same
        matrices as ``from_coo`` of the coalesced COO tensor at a fraction of the cost."""
        row, col, values = sorted_entries(row, col, values, shape[1])
        by_col = sorted_entries(col, row, values, shape[0], order_only=True)
        return Adjacency(
            csr_of(row, col, values, shape),
            csr_of(col[by_col], row[by_col], values[by_col], (shape[1], shape[0])),
        )

    @staticmethod
    def from_coo(coo: Tensor) -> Adjacency:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return Adjacency(coo.to_sparse_csr(), coo.t().coalesce().to_sparse_csr())

    def to(self, device: torch.device) -> Adjacency:
        return Adjacency(self.matrix.to(device), self.matrix_t.to(device))


@overload
def sorted_entries(
    row: Tensor, col: Tensor, values: Tensor, n_cols: int, order_only: Literal[True]
) -> Tensor: ...
@overload
def sorted_entries(
    row: Tensor, col: Tensor, values: Tensor, n_cols: int, order_only: Literal[False] = ...
) -> tuple[Tensor, Tensor, Tensor]: ...
def sorted_entries(
    row: Tensor, col: Tensor, values: Tensor, n_cols: int, order_only: bool = False
) -> Tensor | tuple[Tensor, Tensor, Tensor]:
    """The entries ``(row, col, values)`` of a sparse matrix with ``n_cols`` columns in
    row-major order with repeated positions summed, as ``coalesce()`` leaves a COO tensor,
    for one sort of ``row · n_cols + col`` (no COO tensor built; what ``coalesce`` cost instead:
    docs/benchmarks-training.md, §4d). ``order_only`` returns the sorting permutation alone (for
    entries known to be unique, e.g. those this function returned)."""
    key, order = torch.sort(row * n_cols + col, stable=True)
    if order_only:
        return order
    row, col, values = row[order], col[order], values[order]
    if len(key) > 1:
        first = torch.ones(len(key), dtype=torch.bool, device=key.device)
        first[1:] = key[1:] != key[:-1]
        if not bool(first.all()):
            group = torch.cumsum(first, 0) - 1
            summed = torch.zeros(int(group[-1]) + 1, dtype=values.dtype, device=values.device)
            values = summed.index_add_(0, group, values)
            row, col = row[first], col[first]
    return row, col, values


def csr_of(row: Tensor, col: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
    """A ``shape`` CSR tensor of entries sorted by row (then column), e.g. those of
    :func:`sorted_entries`."""
    crow = torch.zeros(shape[0] + 1, dtype=torch.long, device=row.device)
    if len(row):
        crow[1:] = torch.cumsum(torch.bincount(row, minlength=shape[0]), 0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(
            crow, col.long(), values, shape, device=row.device, check_invariants=False
        )


class _SparseDenseMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, matrix: Tensor, matrix_t: Tensor) -> Tensor:
        ctx.save_for_backward(matrix_t)
        return matrix @ x

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None, None]:
        (matrix_t,) = ctx.saved_tensors
        return matrix_t @ grad, None, None


def spmm(adj: Adjacency, x: Tensor) -> Tensor:
    """``adj.matrix @ x`` with a backward through the cached transpose (float32 inside
    autocast regions, where sparse kernels have no half-precision version)."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        out: Tensor = _SparseDenseMM.apply(x.float(), adj.matrix, adj.matrix_t)
    return out


def spmm_t(adj_t: Tensor, x: Tensor) -> Tensor:
    """``adj_t @ x`` for a sparse CSR ``adj_t`` (PyG's transposed adjacency, row =
    destination), with the backward through :func:`transpose_of` — what a
    ``MessagePassing.message_and_aggregate`` of a sum aggregation computes."""
    if adj_t.layout != torch.sparse_csr:
        raise ValueError(f"spmm_t expects a sparse CSR adj_t, got layout {adj_t.layout}")
    with torch.autocast(device_type=x.device.type, enabled=False):
        out: Tensor = _SparseDenseMM.apply(x.float(), adj_t, transpose_of(adj_t))
    return out


@dataclass
class RelationStack:
    """All relations of a heterogeneous graph in one square sparse matrix over the
    concatenation of every node type (in ``node_types`` order), so that one sparse product
    aggregates every relation (one kernel call instead of one per relation, which dominated
    the step time on CPU).

    Row ``v`` (of type ``t``) averages, with equal weight, the mean neighbour vector of each
    relation ``r = (s, rel, t)`` that reaches ``t``: value ``1 / (R_t · deg_r(v))`` for each
    neighbour ``w`` of ``v`` under ``r``, where ``R_t`` counts the relations into ``t``.
    """

    adjacency: Adjacency
    node_types: list[str]
    #: Row range of each node type in the concatenation.
    slices: dict[str, slice]
    #: Relations into each destination type.
    relations: dict[str, list[tuple[str, str, str]]]
    #: The first rows of ``adjacency`` only: those of the leading ``head_types`` (the types a
    #: last layer has to compute), so that layer skips the other rows' products.
    head: Adjacency | None = None
    head_types: tuple[str, ...] = ()

    @property
    def sizes(self) -> list[int]:
        """Rows of each node type, in ``node_types`` order (for ``torch.split``)."""
        return [self.slices[t].stop - self.slices[t].start for t in self.node_types]

    @staticmethod
    def build(
        edge_index_dict: dict[tuple[str, str, str], Tensor],
        num_nodes: dict[str, int],
        node_types: list[str],
        head_types: list[str] | None = None,
        relation_counts: dict[str, int] | None = None,
    ) -> RelationStack:
        r"""The stack over ``node_types``; with ``head_types`` those types are moved to the
        front and :attr:`head` holds their rows alone. ``relation_counts`` fixes
        :math:`R_t` per destination type (default: the relations into ``t`` with edges here),
        so that a sampled subgraph missing some relation averages like the whole graph. Each
        relation's block is divided by the destination's degree under the relation,
        :math:`1 / (R_t\,d_r(v))`: a row depends on the destination's edges alone, so a
        mini-batch that samples all of a node's neighbours gives it the full graph's row."""
        head_list = [t for t in (head_types or []) if t in node_types]
        node_types = head_list + [t for t in node_types if t not in head_list]
        slices, relations, row, col, values = _stack_entries(
            edge_index_dict, num_nodes, node_types, relation_counts
        )
        total = sum(num_nodes[t] for t in node_types)
        n = max(total, 1)
        # Entries sorted once by (row, column) and once by (column, row): the stack, its
        # transpose and the head's rows (a prefix of the stack's) with their transpose, without
        # the four coalesces of COO tensors that dominated a mini-batch's forward pass.
        row, col, values = sorted_entries(row, col, values, n)
        by_col = sorted_entries(col, row, values, n, order_only=True)
        adj = Adjacency(
            csr_of(row, col, values, (n, n)),
            csr_of(col[by_col], row[by_col], values[by_col], (n, n)),
        )
        head = None
        if head_list and len(head_list) < len(node_types):
            n_head = int(sum(num_nodes[t] for t in head_list))
            m = max(n_head, 1)
            k = int((row < n_head).sum())
            in_head = by_col[row[by_col] < n_head]
            head = Adjacency(
                csr_of(row[:k], col[:k], values[:k], (m, n)),
                csr_of(col[in_head], row[in_head], values[in_head], (n, m)),
            )
        return RelationStack(adj, list(node_types), slices, relations, head, tuple(head_list))


def _stack_entries(
    edge_index_dict: dict[EdgeType, Tensor],
    num_nodes: dict[str, int],
    node_types: list[str],
    relation_counts: dict[str, int] | None,
) -> tuple[dict[str, slice], dict[str, list[EdgeType]], Tensor, Tensor, Tensor]:
    r"""The rows of each type in the concatenation of ``node_types``, the relations into each
    type (those with edges here) and the entries ``(row, col, value)`` of
    :class:`RelationStack`'s matrix, unsorted: :math:`1 / (R_t\,d_r(v))` per edge."""
    offsets, total = {}, 0
    for t in node_types:
        offsets[t] = total
        total += num_nodes[t]
    slices = {t: slice(offsets[t], offsets[t] + num_nodes[t]) for t in node_types}
    relations: dict[str, list[EdgeType]] = {}
    kept = []
    for et, ei in edge_index_dict.items():
        if et[0] in offsets and et[2] in offsets and ei.numel():
            relations.setdefault(et[2], []).append(et)
            kept.append((et, ei))
    rows, cols, vals = [], [], []
    for et, ei in kept:
        src, _, dst = et
        ones = torch.ones(ei.shape[1], device=ei.device)
        deg = torch.zeros(num_nodes[dst], device=ei.device).index_add_(0, ei[1], ones)
        rows.append(ei[1] + offsets[dst])
        cols.append(ei[0] + offsets[src])
        n_rel = (relation_counts or {}).get(dst, len(relations[dst]))
        vals.append(1.0 / (deg[ei[1]] * n_rel))
    device = next((ei.device for _, ei in kept), torch.device("cpu"))
    empty = torch.zeros(0, dtype=torch.long, device=device)
    row, col = torch.cat(rows or [empty]), torch.cat(cols or [empty])
    values = torch.cat(vals) if vals else torch.zeros(0, device=device)
    return slices, relations, row, col, values


@dataclass
class TrimmedStack:
    r"""A sampled mini-batch's :class:`RelationStack` as one matrix per layer, each with only
    the rows its layer has to compute, as PyG's ``trim_to_layer`` trims a batch per layer.

    A neighbour sampler numbers a batch's nodes of each type hop by hop
    (``num_sampled_nodes[t]``: the seeds, then each hop's new nodes) and draws the in-edges
    of a node of hop :math:`h` at hop :math:`h + 1`, from nodes of hops :math:`\le h + 1`.
    With :math:`L` layers the seeds' last vectors need hops :math:`\le 1` after layer
    :math:`L - 1`, and so on: layer :math:`l` (from 0) computes the rows of hops
    :math:`\le L - 1 - l` from those of hops :math:`\le L - l`, the last layer the seeds of
    the ``head_types`` alone. ``layers[l]`` is that block of the batch's stack: its rows are,
    per type in ``node_types`` order, the type's first rows (its hops up to the bound); its
    columns every batch row (``l = 0``) or layer :math:`l - 1`'s rows. A type that receives
    no relation in the batch keeps its vector through a 1 on the diagonal (``HeteroGCN``'s
    keep term). A kept row holds the stack's entries in the stack's order, so the products
    give the kept rows what the whole stack gives them.

    PyG's ``torch_geometric.utils.trim_to_layer`` does not fit: it trims per-type feature and
    edge-index dicts by the sampler's per-hop edge counts, while every relation here is one
    matrix (built from the dicts with two sorts: one build per layer instead of one per
    batch), the cold-start simulation removes edges so that the counts no longer delimit
    the hops (rows are kept by their node's hop here), and the layer mean needs each
    layer's seed rows (:attr:`seed_rows`).
    """

    layers: list[Adjacency]
    #: Input rows: the batch's types in this order (``head_types`` first), every row.
    node_types: list[str]
    head_types: tuple[str, ...]
    #: Seeds of each head type: the rows of the last layer's output, type by type.
    seeds: list[int]
    #: The seeds' rows (of the head types) in the input of each layer.
    seed_rows: list[Tensor]

    @staticmethod
    def build(
        edge_index_dict: dict[EdgeType, Tensor],
        num_sampled_nodes: dict[str, list[int]],
        node_types: list[str],
        num_layers: int,
        head_types: list[str],
        relation_counts: dict[str, int] | None = None,
    ) -> TrimmedStack:
        """The trimmed stack of a batch whose nodes of type ``t`` are numbered by hop,
        ``num_sampled_nodes[t]`` of each (the seeds first), for ``num_layers`` layers.

        Raises:
            ValueError: an edge into a node of hop ``h`` from a node of a later hop than
                ``h + 1`` (the batch is not numbered by hop).
        """
        head_list = [t for t in head_types if t in node_types]
        node_types = head_list + [t for t in node_types if t not in head_list]
        counts = {t: [int(c) for c in num_sampled_nodes[t]] for t in node_types}
        num_nodes = {t: sum(c) for t, c in counts.items()}
        slices, relations, row, col, values = _stack_entries(
            edge_index_dict, num_nodes, node_types, relation_counts
        )
        silent = [t for t in node_types if t not in relations and num_nodes[t]]
        if silent:
            eye = torch.cat([torch.arange(slices[t].start, slices[t].stop) for t in silent])
            eye = eye.to(row.device)
            row, col = torch.cat([row, eye]), torch.cat([col, eye])
            values = torch.cat([values, torch.ones(len(eye), device=values.device)])
        n = max(sum(num_nodes.values()), 1)
        row, col, values = sorted_entries(row, col, values, n)
        by_col = sorted_entries(col, row, values, n, order_only=True)
        start = [slices[t].start for t in node_types]
        starts = torch.tensor(start, device=row.device)

        def within(hop: int) -> list[int]:  # rows of each type up to ``hop`` (seeds: 0)
            return [sum(counts[t][: hop + 1]) if hop or t in head_list else 0 for t in node_types]

        def first(sizes: list[int]) -> list[int]:  # where each type starts in such rows
            return [sum(sizes[:i]) for i in range(len(sizes))]

        layers, seed_rows = [], []
        columns = [num_nodes[t] for t in node_types]  # layer 0 reads every row
        for layer in range(num_layers):
            rows = within(num_layers - 1 - layer)
            # a type's first rows hold a range of the row-sorted entries
            ends = [s + r for s, r in zip(start, rows, strict=True)]
            bounds = torch.searchsorted(row, torch.tensor(start + ends, device=row.device))
            ranges = list(zip(*bounds.view(2, -1).tolist(), strict=True))
            at = first(rows)
            new_row = torch.cat([row[b:e] + (at[i] - start[i]) for i, (b, e) in enumerate(ranges)])
            kept_col = torch.cat([col[b:e] for b, e in ranges])
            kept_values = torch.cat([values[b:e] for b, e in ranges])
            if layer:  # columns: the rows of the layer before
                kind = torch.bucketize(kept_col, starts, right=True) - 1
                local = kept_col - starts[kind]
                if bool((local >= torch.tensor(columns, device=row.device)[kind]).any()):
                    raise ValueError("the batch's nodes are not numbered by hop")
                kept_col = local + torch.tensor(first(columns), device=row.device)[kind]
            if len(new_row) == len(row):
                in_t = by_col
                t_row, t_col = new_row[by_col], kept_col[by_col]
            else:
                keep = torch.zeros(len(row), dtype=torch.bool, device=row.device)
                position = torch.full((len(row),), -1, dtype=torch.long, device=row.device)
                for b, e in ranges:
                    keep[b:e] = True
                position[keep] = torch.arange(len(new_row), device=row.device)
                in_t = position[by_col[keep[by_col]]]
                t_row, t_col = new_row[in_t], kept_col[in_t]
            m, k = sum(rows), sum(columns)
            layers.append(
                Adjacency(
                    csr_of(new_row, kept_col, kept_values, (m, k)),
                    csr_of(t_col, t_row, kept_values[in_t], (k, m)),
                )
            )
            at = first(columns)
            seed_rows.append(
                torch.cat(
                    [torch.arange(at[i], at[i] + counts[t][0]) for i, t in enumerate(head_list)]
                    or [torch.zeros(0, dtype=torch.long)]
                ).to(row.device)
            )
            columns = rows
        seeds = [counts[t][0] for t in head_list]
        return TrimmedStack(layers, node_types, tuple(head_list), seeds, seed_rows)


class ColdStartStack:
    r"""The whole graph's :class:`~training.sparse.RelationStack` with the interaction edges
    of chosen items switched off, one step at a time, at the cost of a few ``index_add_`` over
    the edges: the sparsity pattern (the coalesced entries of the stack and of its transpose)
    is computed once, and a step recomputes the entries' values only, with the stack's
    normalisation :math:`1 / (R_t\,d_r(v))` over the remaining edges (a dropped edge keeps its
    entry with value 0). The result equals ``RelationStack.build`` of the edges of
    :func:`training.models.dpgcn.drop_interactions` with the whole graph's :math:`R_t`, which
    re-sorts and coalesces every entry at each call (a unit test compares the two).

    Args:
        edges (dict): The typed edges of the stack (``message_passing_edges``).
        num_nodes (dict[str, int]): Rows per node type.
        stack (RelationStack): ``RelationStack.build`` of ``edges`` (node order, head types
            and relation counts are taken from it).
    """

    def __init__(
        self, edges: dict[EdgeType, Tensor], num_nodes: dict[str, int], stack: RelationStack
    ) -> None:
        self.stack = stack
        start = {t: s.start for t, s in stack.slices.items()}
        n = max(sum(stack.sizes), 1)
        rows, cols, degree_at, scale, item = [], [], [], [], []
        base = 0
        for dst, relations in stack.relations.items():
            for et in relations:
                src, ei = et[0], edges[et]
                rows.append(ei[1] + start[dst])
                cols.append(ei[0] + start[src])
                degree_at.append(ei[1] + base)  # one degree counter per (relation, node)
                base += num_nodes[dst]
                scale.append(torch.full_like(ei[1], len(relations), dtype=torch.float))
                side = 0 if src == ITEM else 1
                item.append(ei[side] if is_interaction(et) else torch.full_like(ei[1], -1))
        device = stack.adjacency.matrix.device
        empty = torch.zeros(0, dtype=torch.long, device=device)
        row, col = torch.cat(rows or [empty]), torch.cat(cols or [empty])
        self.degree_at, self.degrees = torch.cat(degree_at or [empty]), max(base, 1)
        self.relation_count = torch.cat(scale or [empty.float()])
        self.item = torch.cat(item or [empty])
        # the coalesced entries in row-major (CSR) order, and each edge's entry
        key, self.entry = torch.unique(row * n + col, return_inverse=True)
        self.row, self.col = key // n, key % n
        self.by_col = torch.argsort(self.col * n + self.row)  # entries of the transpose
        self.n = n
        self.n_head = sum(stack.sizes[: len(stack.head_types)]) if stack.head is not None else 0
        head = int((self.row < self.n_head).sum())
        self.head_by_col = torch.argsort(self.col[:head] * n + self.row[:head])

    def without(self, cold: Tensor) -> RelationStack:
        """The stack with every interaction edge of the items ``cold`` (bool per item row)
        removed."""
        gone = (self.item >= 0) & cold[self.item.clamp(min=0)]
        kept = (~gone).float()
        degree = torch.zeros(self.degrees, device=kept.device).index_add_(0, self.degree_at, kept)
        value = kept / (degree[self.degree_at].clamp(min=1.0) * self.relation_count)
        values = torch.zeros(len(self.row), device=kept.device).index_add_(0, self.entry, value)
        adjacency = self._csr(self.row, self.col, values, self.by_col, self.n)
        head = None
        if self.n_head:
            h = len(self.head_by_col)
            head = self._csr(self.row[:h], self.col[:h], values[:h], self.head_by_col, self.n_head)
        s = self.stack
        return RelationStack(adjacency, s.node_types, s.slices, s.relations, head, s.head_types)

    def _csr(self, row: Tensor, col: Tensor, values: Tensor, by_col: Tensor, m: int) -> Adjacency:
        """``[m, n]`` CSR of row-major entries and its ``[n, m]`` transpose."""
        return Adjacency(
            csr_of(row, col, values, (m, self.n)),
            csr_of(col[by_col], row[by_col], values[by_col], (self.n, m)),
        )


def is_interaction(et: EdgeType) -> bool:
    """Whether relation ``et`` is an interaction edge of an item: user→item of any type,
    query→item (``LED_TO``) or their reverses; an item's category and term edges are not."""
    ends = {et[0], et[2]}
    return ITEM in ends and bool(ends & {USER, QUERY})
