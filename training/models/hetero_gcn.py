"""Type-specific graph convolutions over the user–item–query–term graph (DP-GCN encoder)."""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn
from torch_geometric.nn.conv import MessagePassing

from training.data import EdgeType
from training.models.base import reset_modules
from training.sparse import RelationStack, spmm, spmm_t


class HeteroSAGEConv(MessagePassing):
    r"""One heterogeneous graph convolution layer with type-specific weights. For a node
    :math:`v` of type :math:`t`, each relation :math:`r = (s, \text{rel}, t)` reaching
    :math:`t` is mean-aggregated separately, the relations are averaged, transformed by the
    type's matrix :math:`\mathbf{W}_t` and added to the node's own vector (the root term,
    playing the role of the self-loop of :math:`\tilde A = A + I`):

    .. math::
        \mathbf{m}_v = \frac{1}{R_t}\sum_{r \,:\, d(r)=t}
        \frac{1}{|\mathcal{N}_r(v)|}\sum_{w \in \mathcal{N}_r(v)} \mathbf{h}_w, \qquad
        \mathbf{h}'_v = \mathbf{h}_v + \mathbf{W}_t\,\mathbf{m}_v + \mathbf{b}_t

    This is :math:`\mathbf{h}_v` plus PyG's
    ``HeteroConv({r: SAGEConv((D, D), D, aggr="mean", root_weight=False)}, aggr="mean")``
    with the SAGE weights shared by the relations into the same node type (a unit test checks
    the equivalence).

    As a PyG :class:`~torch_geometric.nn.conv.MessagePassing` layer it works on the graph's
    homogeneous view (every node type stacked, as ``HeteroData.to_homogeneous()`` does): the
    messages are :math:`a_{vw}\,\mathbf{h}_w` with the edge weight
    :math:`a_{vw} = 1 / (R_t\,|\mathcal{N}_r(v)|)` of a
    :class:`~training.sparse.RelationStack`, summed. Given the stack's CSR matrix as ``adj_t``,
    :meth:`message_and_aggregate` computes every relation's messages in one sparse product
    whose backward reuses the stack's cached transpose (:func:`~training.sparse.spmm_t`); given
    an ``edge_index`` and ``edge_weight`` (:meth:`propagate` with a ``[2, E]`` tensor), PyG's
    gather–scatter path computes the same sum. :meth:`forward` takes either a
    :class:`~training.sparse.RelationStack` or a heterogeneous ``edge_index_dict`` (a
    ``HeteroData``'s or a mini-batch loader's), from which it builds the stack.

    Args:
        node_types (list[str]): Node types present.
        edge_types (list[tuple[str, str, str]]): Relations ``(src, rel, dst)``.
        in_channels (int): Input size.
        out_channels (int): Output size (must equal ``in_channels``: residual root term).

    Shapes:
        - **input:** ``x_dict`` :math:`(|\mathcal{V}_t|, F)` per node type and the graph's
          :class:`~training.sparse.RelationStack` (or ``edge_index_dict``).
        - **output:** :math:`(|\mathcal{V}_t|, F)` for every node type with incoming relations
          (or the requested ``types``).
    """

    def __init__(
        self,
        node_types: list[str],
        edge_types: list[EdgeType],
        in_channels: int,
        out_channels: int,
    ) -> None:
        super().__init__(aggr="sum")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.node_types = list(node_types)
        self.relations: dict[str, list[EdgeType]] = {}
        for et in edge_types:
            if et[0] in node_types and et[2] in node_types:
                self.relations.setdefault(et[2], []).append(et)
        if in_channels != out_channels:
            raise ValueError("HeteroSAGEConv keeps the size (residual root term)")
        self.lins = nn.ModuleDict({t: nn.Linear(in_channels, out_channels) for t in self.relations})
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        reset_modules(self.lins.values())

    def forward(
        self,
        x_dict: dict[str, Tensor],
        stack: RelationStack | dict[EdgeType, Tensor],
        types: list[str] | None = None,
    ) -> dict[str, Tensor]:
        """Outputs for ``types`` (default: every type with incoming relations).

        When ``types`` are the stack's :attr:`~training.sparse.RelationStack.head_types`, only
        their rows are aggregated (the last layer of :class:`HeteroGCN`). Per-type parts are
        taken with ``torch.split`` (its backward is one concatenation, where slicing would
        allocate a zero-filled gradient of the whole matrix per type)."""
        if not isinstance(stack, RelationStack):
            stack = RelationStack.build(
                {et: ei for et, ei in stack.items() if et in self.relations.get(et[2], ())},
                {t: int(x.shape[0]) for t, x in x_dict.items()},
                [t for t in self.node_types if t in x_dict],
                relation_counts={t: len(r) for t, r in self.relations.items()},
            )
        x = torch.cat([x_dict[t] for t in stack.node_types])
        wanted = self.relations if types is None else [t for t in types if t in self.relations]
        if stack.head is not None and types is not None and set(types) <= set(stack.head_types):
            names = list(stack.head_types)
            adj_t = stack.head.matrix
        else:
            names = stack.node_types
            adj_t = stack.adjacency.matrix
        messages = self.propagate(adj_t, x=x, edge_weight=None)
        parts = dict(zip(names, torch.split(messages, stack.sizes[: len(names)]), strict=True))
        return {t: x_dict[t] + self.lins[t](parts[t]) for t in wanted}

    def message(self, x_j: Tensor, edge_weight: Tensor) -> Tensor:
        return edge_weight.view(-1, 1) * x_j

    def message_and_aggregate(self, adj_t: Tensor, x: Tensor) -> Tensor:
        return spmm_t(adj_t, x)

    def __repr__(self) -> str:
        n = sum(len(r) for r in self.relations.values())
        return f"{self.__class__.__name__}({n} relations, {self.in_channels}, {self.out_channels})"


class HeteroGCN(nn.Module):
    r"""A stack of type-specific heterogeneous graph convolutions (paper §3.1, §3.3: "node
    embeddings for users, queries, and items are updated iteratively through type-specific
    graph convolutional layers").

    PyG's :class:`~torch_geometric.nn.conv.GCNConv` only handles edges between nodes of one type,
    so every relation :math:`r = (s, \text{rel}, d)` and its reverse ``rev_rel`` is normalised
    separately (``norm``: mean over the relation's neighbours, or ``"sym"``
    :math:`1/\sqrt{d_r(v)\,d_{r^{-1}}(w)}`) and the relations reaching a type are averaged
    (:class:`~training.sparse.RelationStack`, the weighted-average aggregation of the paper's
    eq. 2). Two layer forms:

    * ``light=True`` (the default of :class:`~training.models.dpgcn.DPGCN`): the propagation
      alone, as in LightGCN,
      :math:`\mathbf{h}^{(l+1)}_v = \tfrac{1}{R_{\tau(v)}}\sum_{r}
      \sum_{w \in \mathcal{N}_r(v)} a^r_{vw}\,\mathbf{h}^{(l)}_w`, with no parameters: a node's
      vector stays a smoothed combination of its typed neighbourhood's input vectors.
    * ``light=False``: a :class:`HeteroSAGEConv` with a matrix, a LayerNorm and a ReLU per node
      type and layer (the node's own vector playing the role of the self-loop of
      :math:`\tilde A = A + I`):

      .. math::
          \mathbf{h}^{(l+1)}_v = \mathrm{ReLU}\Big(\mathrm{LN}_{\tau(v)}\Big(
          \mathbf{h}^{(l)}_v + \mathbf{W}^{(l)}_{\tau(v)}
          \tfrac{1}{R_{\tau(v)}}\textstyle\sum_{r}
          \mathrm{mean}_{w \in \mathcal{N}_r(v)} \mathbf{h}^{(l)}_w + \mathbf{b}^{(l)}_{\tau(v)}
          \Big)\Big)

    The output averages all layers, as in LightGCN:
    :math:`\mathbf{h}_v = \frac{1}{L+1}\sum_{l=0}^{L} \mathbf{h}^{(l)}_v`. Node types that receive
    no messages keep their previous representation.

    Args:
        node_types (list[str]): Node types present.
        edge_types (list[tuple[str, str, str]]): Relations to convolve over (reverse relations
            included by the caller).
        dim (int): Hidden dimension :math:`D` (input and output).
        num_layers (int): Number of convolution layers :math:`L`.
        dropout (float, optional): Dropout after each layer. (default: :obj:`0.0`)
        output_types (list[str], optional): The node types whose representations are used
            downstream; the last layer computes only those (default: all).
        light (bool, optional): Propagation only, without the per-type matrix, LayerNorm and
            ReLU. (default: :obj:`False`)
        norm (str, optional): ``"mean"`` or ``"sym"`` normalisation of each relation.
            (default: :obj:`"mean"`)

    Shapes:
        - **input:** ``x_dict`` :math:`(|\mathcal{V}_t|, D)` per node type, the graph's
          :class:`~training.sparse.RelationStack` (or ``edge_index_dict``).
        - **output:** ``x_dict`` :math:`(|\mathcal{V}_t|, D)` per output node type.
    """

    def __init__(
        self,
        node_types: list[str],
        edge_types: list[EdgeType],
        dim: int,
        num_layers: int,
        dropout: float = 0.0,
        output_types: list[str] | None = None,
        light: bool = False,
        norm: str = "mean",
    ) -> None:
        super().__init__()
        self.light = light
        self.norm = norm
        self.node_types = list(node_types)
        self.output_types = list(output_types) if output_types is not None else list(node_types)
        self.edge_types = list(edge_types)
        self.dim = dim
        self.num_layers = num_layers
        self.dropout: nn.Module = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        #: Relations into each node type (:math:`R_t`), also for subgraphs that miss some.
        self.relation_counts: dict[str, int] = {}
        for et in self.edge_types:
            if et[0] in self.node_types and et[2] in self.node_types:
                self.relation_counts[et[2]] = self.relation_counts.get(et[2], 0) + 1
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        self.num_props = num_layers if self.edge_types else 0
        for _ in range(0 if light else self.num_props):
            self.convs.append(HeteroSAGEConv(self.node_types, self.edge_types, dim, dim))
            self.norms.append(nn.ModuleDict({t: nn.LayerNorm(dim) for t in self.node_types}))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        reset_modules(self.convs)
        for norms in self.norms:
            reset_modules(cast(nn.ModuleDict, norms).values())

    def forward(
        self, x_dict: dict[str, Tensor], stack: RelationStack | dict[EdgeType, Tensor]
    ) -> dict[str, Tensor]:
        """Representations of the output types; ``stack`` is the graph's
        :class:`~training.sparse.RelationStack` or its ``edge_index_dict`` (e.g. a
        ``HeteroData``'s or a mini-batch's), from which the stack is built once."""
        if not isinstance(stack, RelationStack):
            stack = RelationStack.build(
                {et: ei for et, ei in stack.items() if et in self.edge_types},
                {t: int(x.shape[0]) for t, x in x_dict.items()},
                [t for t in self.node_types if t in x_dict],
                head_types=self.output_types,
                relation_counts=self.relation_counts,
                norm=self.norm,
            )
        if self.light:
            return self._light(x_dict, stack)
        h = dict(x_dict)
        total = {t: x_dict[t] for t in self.output_types}
        for j, (conv, norm_dict) in enumerate(zip(self.convs, self.norms, strict=True)):
            norms = cast(nn.ModuleDict, norm_dict)
            last = j == len(self.convs) - 1
            out = conv(h, stack, self.output_types if last else None)
            h = {
                t: self.dropout(norms[t](out[t]).relu()) if t in out else h[t]
                for t in (self.output_types if last else h)
            }
            total = {t: total[t] + h[t] for t in total}
        return {t: v / (len(self.convs) + 1) for t, v in total.items()}

    def _light(self, x_dict: dict[str, Tensor], stack: RelationStack) -> dict[str, Tensor]:
        x = torch.cat([x_dict[t] for t in stack.node_types])
        total = x[: sum(stack.sizes[: len(stack.head_types)])] if stack.head_types else x
        receives = torch.zeros(len(x), 1, device=x.device)
        for t in stack.relations:
            receives[stack.slices[t]] = 1.0
        for j in range(self.num_props):
            last = j == self.num_props - 1
            adj = stack.head if last and stack.head is not None else stack.adjacency
            m = spmm(adj, x)
            x = m + (1 - receives[: len(m)]) * x[: len(m)]
            if not last:
                x = self.dropout(x)
            total = total + x[: len(total)]
        total = total / (self.num_props + 1)
        names = list(stack.head_types) if stack.head_types else stack.node_types
        parts = dict(zip(names, torch.split(total, stack.sizes[: len(names)]), strict=True))
        return {t: parts[t] for t in self.output_types if t in parts}

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({len(self.edge_types)} relations, dim={self.dim}, "
            f"num_layers={self.num_layers})"
        )
