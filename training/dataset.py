"""Tensors for training: the training graph as PyG ``x``/``edge_index`` dicts plus features.

:class:`GraphData` is built once per :class:`training.splits.Split` and device. It holds the
heterogeneous training graph with a reverse relation (``rev_<TYPE>``) for every edge type, so
messages flow both ways (as in PyG's ``ToUndirected``), the users' static features, the users'
recent training items (for the DIN-style baselines and the DDPG state) and the items'
categories and terms.

For inductive models it also holds each node type's side information as weighted multi-hot
bags (:class:`SideBag`, the input of :class:`torch.nn.EmbeddingBag`): an item's category path
(its categories and their ``SUBCATEGORY_OF`` ancestors), its terms and its price bucket (when
the export has an ``Item.x`` column ``price``); a query's terms. ``trained`` marks the users,
items and queries that have training interactions (searches for queries): the others' ID
vectors never receive a gradient.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from training.data import CATEGORY, HAS_TERM, IN_CATEGORY, ITEM, QUERY, TERM, USER, EdgeType, Pairs
from training.splits import Split

logger = logging.getLogger(__name__)

#: ``(:Category)-[:SUBCATEGORY_OF]->(:Category)`` (not among ``training.data``'s names).
SUBCATEGORY_OF = "SUBCATEGORY_OF"


def reverse_type(et: EdgeType) -> EdgeType:
    return et[2], f"rev_{et[1]}", et[0]


#: Price buckets (quantiles over the items with a positive price).
PRICE_BUCKETS = 10
#: Ancestor levels followed up ``SUBCATEGORY_OF`` for an item's category path.
MAX_CATEGORY_DEPTH = 8


@dataclass
class SideBag:
    """Side information of the nodes of one type as weighted multi-hot bags.

    Node ``v``'s tokens are ``tokens[offsets[v]:offsets[v + 1]]`` (the last bag ends at
    ``len(tokens)``), the input of :class:`torch.nn.EmbeddingBag` in ``"sum"`` mode with
    ``per_sample_weights=weights``. Tokens of one group (``groups[name]`` is the group's first
    token id) weigh ``1 / (the node's tokens in that group)``, so a bag is the sum of its
    groups' means; a node with no side information has an empty bag (a zero vector)."""

    tokens: Tensor
    offsets: Tensor
    weights: Tensor
    num_tokens: int
    groups: dict[str, int]

    def to(self, device: torch.device) -> SideBag:
        return SideBag(
            self.tokens.to(device),
            self.offsets.to(device),
            self.weights.to(device),
            self.num_tokens,
            dict(self.groups),
        )


@dataclass
class GraphData:
    """The training graph and side tensors of one split, on one device."""

    split: Split
    device: torch.device
    num_nodes: dict[str, int]
    #: Training edges and their reverses, ``[2, E]`` long tensors (PyG convention).
    edge_index_dict: dict[EdgeType, Tensor]
    #: Static user features ``[U, F]`` (F may be 0).
    user_x: Tensor
    #: Last ``L`` training items per user, oldest first, padded on the left with ``n_items``.
    history: Tensor
    #: Item → category and item → term membership as ``[2, E]`` (item row, category/term row).
    item_categories: Tensor
    item_terms: Tensor
    #: Side information per node type (Item: category path, terms, price bucket; Query: terms).
    side: dict[str, SideBag] = field(default_factory=dict)
    #: Per node type (User, Item, Query), ``[N]`` bool: the node has training interactions.
    trained: dict[str, Tensor] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return self.split.n_users

    @property
    def n_items(self) -> int:
        return self.split.n_items

    @property
    def n_queries(self) -> int:
        return self.split.n_queries

    @property
    def n_categories(self) -> int:
        return self.num_nodes.get(CATEGORY, 0)

    @property
    def user_feature_dim(self) -> int:
        return int(self.user_x.shape[1])

    def homogeneous_user_item(self) -> tuple[Tensor, Tensor]:
        """Training user–item edges as one undirected graph over ``U + I`` nodes (users first),
        with the interaction weight set to 1: ``(edge_index [2, 2E], user_item [2, E])``."""
        et = (USER, "__interactions__", ITEM)
        ui = self.edge_index_dict.get(et)
        if ui is None:
            ui = torch.zeros(2, 0, dtype=torch.long, device=self.device)
        shifted = torch.stack([ui[0], ui[1] + self.n_users])
        both = torch.cat([shifted, shifted.flip(0)], dim=1)
        return both, ui


def last_items(split: Split, length: int, pad: int, include: Sequence[Pairs] = ()) -> np.ndarray:
    """``[U, length]`` matrix of each user's last training items (followed by their items in
    ``include``, e.g. the validation and test pairs, in that order), left-padded with ``pad``."""
    extra: list[dict[int, int]] = [
        dict(zip(p.row.tolist(), p.col.tolist(), strict=True)) for p in include
    ]
    out = np.full((split.n_users, length), pad, dtype=np.int64)
    for u in range(split.n_users):
        items = split.user_history(u).tolist() + [e[u] for e in extra if u in e]
        items = items[-length:]
        if items:
            out[u, length - len(items) :] = items
    return out


def build_graph_data(split: Split, device: torch.device, history_len: int) -> GraphData:
    graph = split.graph
    num_nodes = {t: graph.num_nodes(t) for t in graph.node_types}
    eid: dict[EdgeType, Tensor] = {}
    ui_parts = []
    for et, e in split.train_edges.items():
        if e.num_edges == 0 or et[0] not in num_nodes or et[2] not in num_nodes:
            continue
        index = torch.as_tensor(e.index, dtype=torch.long, device=device)
        eid[et] = index
        eid[reverse_type(et)] = index.flip(0)
        if et[0] == USER and et[2] == ITEM:
            ui_parts.append(e.index)
    # One deduplicated user → item relation over all interaction types, used by the
    # homogeneous baselines (GCN, LightGCN, ItemKNN).
    if ui_parts:
        ui = np.unique(np.concatenate(ui_parts, axis=1), axis=1)
    else:
        ui = np.zeros((2, 0), dtype=np.int64)
    eid[(USER, "__interactions__", ITEM)] = torch.as_tensor(ui, dtype=torch.long, device=device)

    x = graph.x.get(USER)
    if x is None or len(x) != split.n_users:
        x = np.zeros((split.n_users, 0), dtype=np.float32)
    empty = torch.zeros(2, 0, dtype=torch.long, device=device)
    side = {t: bag.to(device) for t, bag in side_bags(split).items()}
    trained = {t: torch.as_tensor(mask, device=device) for t, mask in trained_nodes(split).items()}
    cat = split.train_edges.get((ITEM, IN_CATEGORY, CATEGORY))
    term = split.train_edges.get((ITEM, HAS_TERM, TERM))
    data = GraphData(
        split=split,
        device=device,
        num_nodes=num_nodes,
        edge_index_dict=eid,
        user_x=torch.as_tensor(x, dtype=torch.float32, device=device),
        history=torch.as_tensor(last_items(split, history_len, split.n_items), device=device),
        item_categories=empty
        if cat is None
        else torch.as_tensor(cat.index, dtype=torch.long, device=device),
        item_terms=empty
        if term is None
        else torch.as_tensor(term.index, dtype=torch.long, device=device),
        side=side,
        trained=trained,
    )
    logger.debug(
        "graph data: %s", {f"{k[0]}-{k[1]}-{k[2]}": int(v.shape[1]) for k, v in eid.items()}
    )
    return data


def trained_nodes(split: Split) -> dict[str, np.ndarray]:
    """Per node type, ``[N]`` bool: users with a training interaction or search, items with a
    training interaction, queries with a training search."""
    users = np.zeros(split.n_users, dtype=bool)
    users[split.train.row] = True
    users[split.train_search.row] = True
    items = np.zeros(split.n_items, dtype=bool)
    items[split.train.col] = True
    out = {USER: users, ITEM: items}
    if split.n_queries:
        queries = np.zeros(split.n_queries, dtype=bool)
        queries[split.train_search.col] = True
        out[QUERY] = queries
    return out


def _category_paths(split: Split) -> tuple[np.ndarray, np.ndarray]:
    """(item, category) pairs of every item's categories and their ``SUBCATEGORY_OF``
    ancestors (up to :data:`MAX_CATEGORY_DEPTH` levels), unique."""
    direct = split.train_edges.get((ITEM, IN_CATEGORY, CATEGORY))
    if direct is None or direct.num_edges == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    items, cats = [direct.index[0]], [direct.index[1]]
    parents = split.train_edges.get((CATEGORY, SUBCATEGORY_OF, CATEGORY))
    if parents is not None and parents.num_edges:
        n_cat = split.graph.num_nodes(CATEGORY)
        child, parent = parents.index
        order = np.argsort(child, kind="stable")  # parents as CSR by child
        starts = np.searchsorted(child[order], np.arange(n_cat + 1))
        level_items, level_cats = direct.index[0], direct.index[1]
        for _ in range(MAX_CATEGORY_DEPTH):  # one level up per step (a cycle stops here)
            counts = (starts[1:] - starts[:-1])[level_cats]
            if counts.sum() == 0:
                break
            level_items = np.repeat(level_items, counts)
            first = np.repeat(starts[:-1][level_cats], counts)
            within = np.arange(len(first)) - np.repeat(np.cumsum(counts) - counts, counts)
            level_cats = parent[order][first + within]
            items.append(level_items)
            cats.append(level_cats)
    pairs = np.unique(np.stack([np.concatenate(items), np.concatenate(cats)]), axis=1)
    return pairs[0], pairs[1]


def _price_buckets(split: Split) -> tuple[np.ndarray, np.ndarray]:
    """(item, bucket) pairs: price quantile bucket of the items with a positive price, when
    the export has an ``Item.x`` column named ``price``."""
    names = split.graph.feature_names.get(ITEM, [])
    x = split.graph.x.get(ITEM)
    if x is None or "price" not in names:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    price = x[:, names.index("price")]
    items = np.flatnonzero(price > 0)
    if len(items) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    edges = np.quantile(price[items], np.linspace(0, 1, PRICE_BUCKETS + 1)[1:-1])
    return items, np.searchsorted(edges, price[items], side="right").astype(np.int64)


def make_side_bag(n: int, groups: list[tuple[str, np.ndarray, np.ndarray, int]]) -> SideBag:
    """Bags of ``n`` nodes from ``(name, node rows, token ids within the group, group size)``
    groups; token ids are offset by the sizes of the groups before."""
    rows, tokens, weights = [], [], []
    start, firsts = 0, {}
    for name, node, token, size in groups:
        pairs = np.unique(np.stack([node, token]).astype(np.int64), axis=1)
        count = np.bincount(pairs[0], minlength=n)
        rows.append(pairs[0])
        tokens.append(pairs[1] + start)
        weights.append(1.0 / count[pairs[0]])
        firsts[name] = start
        start += size
    row = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    order = np.argsort(row, kind="stable")
    tok = np.concatenate(tokens)[order] if tokens else np.zeros(0, np.int64)
    w = np.concatenate(weights)[order] if weights else np.zeros(0)
    offsets = np.searchsorted(row[order], np.arange(n))
    return SideBag(
        tokens=torch.as_tensor(tok, dtype=torch.long),
        offsets=torch.as_tensor(offsets, dtype=torch.long),
        weights=torch.as_tensor(w, dtype=torch.float32),
        num_tokens=start,
        groups=firsts,
    )


def side_bags(split: Split) -> dict[str, SideBag]:
    """Side information of items (category path, terms, price bucket) and queries (terms);
    types without any are left out. Catalogue edges are the same in every split, so a node
    with no training interactions still has its bag."""
    graph = split.graph
    n_cat, n_term = graph.num_nodes(CATEGORY), graph.num_nodes(TERM)
    out: dict[str, SideBag] = {}
    item_groups = []
    if n_cat:
        item_groups.append(("category", *_category_paths(split), n_cat))
    term = split.train_edges.get((ITEM, HAS_TERM, TERM))
    if n_term and term is not None:
        item_groups.append(("term", term.index[0], term.index[1], n_term))
    price = _price_buckets(split)
    if len(price[0]):
        item_groups.append(("price", *price, PRICE_BUCKETS))
    if split.n_items and any(len(g[1]) for g in item_groups):
        out[ITEM] = make_side_bag(split.n_items, item_groups)
    q_term = split.train_edges.get((QUERY, HAS_TERM, TERM))
    if split.n_queries and n_term and q_term is not None and q_term.num_edges:
        out[QUERY] = make_side_bag(
            split.n_queries, [("term", q_term.index[0], q_term.index[1], n_term)]
        )
    return out


#: Node type of the tokens of each side-information group (the price group has buckets).
SIDE_GROUP_LABELS = {"category": CATEGORY, "term": TERM}


def side_token_keys(bag: SideBag, ids: dict[str, np.ndarray]) -> np.ndarray:
    """A stable name per token of ``bag``: ``<Label>:<external id>`` for category and term
    tokens, ``price:<bucket>`` for price buckets. Tokens of two exports with the same name
    are the same (used to carry trained side vectors over to another export)."""
    keys = np.empty(bag.num_tokens, dtype=object)
    starts = sorted(bag.groups.items(), key=lambda kv: kv[1])
    for k, (name, first) in enumerate(starts):
        end = starts[k + 1][1] if k + 1 < len(starts) else bag.num_tokens
        label = SIDE_GROUP_LABELS.get(name)
        if label is None:
            keys[first:end] = [f"{name}:{b}" for b in range(end - first)]
        else:
            keys[first:end] = [f"{label}:{i}" for i in ids[label][: end - first]]
    return keys.astype(str)


def message_passing_edges(data: GraphData) -> dict[EdgeType, Tensor]:
    """The typed edges (with reverses) the heterogeneous GCN propagates over."""
    return {et: ei for et, ei in data.edge_index_dict.items() if et[1] != "__interactions__"}


__all__ = [
    "QUERY",
    "GraphData",
    "SideBag",
    "build_graph_data",
    "last_items",
    "make_side_bag",
    "message_passing_edges",
    "side_bags",
    "side_token_keys",
    "trained_nodes",
]
