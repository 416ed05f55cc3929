"""Type-specific graph propagation over the user–item–query–term graph (DP-GCN encoder)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from training.data import EdgeType
from training.sparse import Adjacency, RelationStack, TrimmedStack, spmm

#: Values of ``HeteroGCN(relation_mean=…)``.
RELATION_MEANS = ("node", "type")


class HeteroGCN(nn.Module):
    r"""Type-specific propagation over a heterogeneous graph (paper §3.1, §3.3: "node
    embeddings for users, queries, and items are updated iteratively through type-specific
    graph convolutional layers"), in LightGCN's light form: no weight matrix, normalisation or
    non-linearity inside a layer.

    PyG's :class:`~torch_geometric.nn.conv.GCNConv` only handles edges between nodes of one
    type, so every relation :math:`r = (s, \text{rel}, d)` and its reverse ``rev_rel`` is
    mean-aggregated separately and the relations reaching a type are averaged (the
    weighted-average aggregation of the paper's eq. 2,
    :class:`~training.sparse.RelationStack`):

    .. math::
        \mathbf{h}^{(l+1)}_v = \frac{1}{R_{\tau(v)}}\sum_{r \,:\, d(r) = \tau(v)}
        \frac{1}{|\mathcal{N}_r(v)|}\sum_{w \in \mathcal{N}_r(v)} \mathbf{h}^{(l)}_w

    with :math:`R_t` the relations into type :math:`t` (``relation_mean="type"``, the
    default). With ``relation_mean="node"`` :math:`R_{\tau(v)}` is replaced by :math:`R(v)`,
    the relations under which :math:`v` has at least one neighbour, so a node's message is
    the mean of the relation means it actually receives: an item without interactions
    (category and term neighbours only) gets the mean of its category and term messages,
    not that sum divided by every relation an item can have, and sits on the same scale as
    a warm item (docs/model.md, "Cold items on the warm items' scale"). With one relation (user–item
    interactions alone) this is LightGCN's propagation with mean instead of symmetric
    normalisation. It is PyG's ``HeteroConv({r: SimpleConv(aggr="mean")}, aggr="mean")``
    (a unit test checks it), computed as one sparse product over every relation. Node types
    that receive no messages keep their previous representation. The output averages all
    layers, as in LightGCN: :math:`\mathbf{h}_v = \frac{1}{L+1}\sum_{l=0}^{L}\mathbf{h}^{(l)}_v`,
    so a node's vector is a smoothed combination of its typed neighbourhood's input vectors
    (a per-type matrix, LayerNorm and ReLU per layer over-fitted: docs/model.md, "Quality").

    Args:
        node_types (list[str]): Node types present.
        edge_types (list[tuple[str, str, str]]): Relations to propagate over (reverse
            relations included by the caller).
        dim (int): Embedding size :math:`D` (input and output).
        num_layers (int): Number of propagation layers :math:`L`.
        dropout (float, optional): Dropout after each layer but the last. (default: :obj:`0.0`)
        output_types (list[str], optional): The node types whose representations are used
            downstream; the last layer computes only those (default: all).
        relation_mean (str, optional): ``"node"``: average the relations a node has
            neighbours under; ``"type"``: divide by every relation into its type (PyG's
            ``HeteroConv(aggr="mean")``, where a relation without neighbours adds a zero).
            (default: :obj:`"type"`)

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
        relation_mean: str = "type",
    ) -> None:
        super().__init__()
        if relation_mean not in RELATION_MEANS:
            raise ValueError(
                f"relation_mean must be one of {', '.join(RELATION_MEANS)}, got {relation_mean!r}"
            )
        self.relation_mean = relation_mean
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
        self.num_props = num_layers if self.edge_types else 0

    def reset_parameters(self) -> None:
        """Nothing to reset: the propagation has no parameters."""

    def forward(
        self,
        x_dict: dict[str, Tensor],
        stack: RelationStack | dict[EdgeType, Tensor],
        num_sampled_nodes: dict[str, list[int]] | None = None,
    ) -> dict[str, Tensor]:
        """Representations of the output types; ``stack`` is the graph's
        :class:`~training.sparse.RelationStack` or its ``edge_index_dict`` (e.g. a
        ``HeteroData``'s or a mini-batch's), from which the stack is built once.

        The last layer multiplies only the output types' rows (:attr:`RelationStack.head`);
        per-type parts are taken with ``torch.split`` (its backward is one concatenation,
        where slicing would allocate a zero-filled gradient of the whole matrix per type).

        With ``num_sampled_nodes`` (a sampled batch's nodes of each type per hop, seeds first:
        ``batch[t].num_sampled_nodes``) and an ``edge_index_dict``, each layer computes only
        the rows a later layer or the output reads (:class:`~training.sparse.TrimmedStack`)
        and the output holds the seeds of the output types alone: the first
        ``num_sampled_nodes[t][0]`` rows of type ``t``, equal to those rows without it."""
        if (
            num_sampled_nodes is not None
            and self.num_props
            and not isinstance(stack, RelationStack)
        ):
            trimmed = TrimmedStack.build(
                {et: ei for et, ei in stack.items() if et in self.edge_types},
                num_sampled_nodes,
                [t for t in self.node_types if t in x_dict],
                self.num_props,
                self.output_types,
                self.relation_counts,
            )
            return self.trimmed_forward(x_dict, trimmed)
        if not isinstance(stack, RelationStack):
            stack = RelationStack.build(
                {et: ei for et, ei in stack.items() if et in self.edge_types},
                {t: int(x.shape[0]) for t, x in x_dict.items()},
                [t for t in self.node_types if t in x_dict],
                head_types=self.output_types,
                relation_counts=self.relation_counts,
            )
        x = torch.cat([x_dict[t] for t in stack.node_types])
        n_out = sum(stack.sizes[: len(stack.head_types)]) if stack.head_types else len(x)
        keep = silent_rows(stack, x)
        layers = [x]
        for j in range(self.num_props):
            last = j == self.num_props - 1
            adj = stack.head if last and stack.head is not None else stack.adjacency
            m = spmm(adj, x)
            if self.relation_mean == "node":
                m = m / received_share(adj)
            x = m if keep is None else m + keep[: len(m)] * x[: len(m)]
            if not last:
                x = self.dropout(x)
            layers.append(x)
        # summed in place into the last layer's output rows (a fresh tensor no backward reads)
        total = layers.pop()
        total = total if layers and len(total) == n_out else total[:n_out].clone()
        for earlier in reversed(layers):
            total.add_(earlier if len(earlier) == n_out else earlier[:n_out])
        total = total.div_(self.num_props + 1)
        names = list(stack.head_types) if stack.head_types else stack.node_types
        parts = dict(zip(names, torch.split(total, stack.sizes[: len(names)]), strict=True))
        return {t: parts[t] for t in self.output_types if t in parts}

    def trimmed_forward(self, x_dict: dict[str, Tensor], stack: TrimmedStack) -> dict[str, Tensor]:
        """The seeds' representations of the output types, layer by layer on the rows each
        layer needs (``forward`` with ``num_sampled_nodes``)."""
        x = torch.cat([x_dict[t] for t in stack.node_types])
        seeds = []
        for j, adj in enumerate(stack.layers):
            seeds.append(x.index_select(0, stack.seed_rows[j]))
            x = spmm(adj, x)
            if self.relation_mean == "node":
                x = x / received_share(adj)
            if j < len(stack.layers) - 1:
                x = self.dropout(x)
        # summed in place into the last layer's output (a fresh tensor no backward reads)
        for earlier in reversed(seeds):
            x.add_(earlier)
        x = x.div_(len(stack.layers) + 1)
        parts = dict(zip(stack.head_types, torch.split(x, stack.seeds), strict=True))
        return {t: parts[t] for t in self.output_types if t in parts}

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}({len(self.edge_types)} relations, dim={self.dim}, "
            f"num_layers={self.num_layers})"
        )


def silent_rows(stack: RelationStack, x: Tensor) -> Tensor | None:
    """``[n, 1]``: 1 for the rows of ``x`` (the stack's concatenated types) whose type receives
    no relation and keeps its vector, 0 for the others; ``None`` when every type receives."""
    silent = [t for t in stack.node_types if t not in stack.relations]
    if not silent:
        return None
    keep = torch.zeros(len(x), 1, device=x.device)
    for t in silent:
        keep[stack.slices[t]] = 1.0
    return keep


def received_share(adj: Adjacency) -> Tensor:
    r"""``[n_dst, 1]``: the row sums of a :class:`~training.sparse.RelationStack` matrix.
    Each relation under which node :math:`v` has neighbours contributes
    :math:`d_r(v) \cdot 1 / (R_t\, d_r(v)) = 1 / R_t` to row :math:`v`, so the sum is
    :math:`R(v) / R_t`, the share of its type's relations that reach the node; dividing the
    row by it turns the mean over all :math:`R_t` relations into the mean over the
    :math:`R(v)` present. Rows without any neighbour get 1 (their message stays 0). Also right
    for the cold-start stacks, where a dropped edge keeps its entry with value 0."""
    with torch.no_grad():
        ones = torch.ones(adj.shape[1], 1, device=adj.matrix.device)
        total = torch.sparse.mm(adj.matrix, ones)
    return torch.where(total > 0, total, torch.ones_like(total))
