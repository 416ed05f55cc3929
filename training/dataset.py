"""Tensors for training: the training graph as PyG ``x``/``edge_index`` dicts plus features.

:class:`GraphData` is built once per :class:`training.data.Split` and device. It holds the
heterogeneous training graph with a reverse relation (``rev_<TYPE>``) for every edge type, so
messages flow both ways (as in PyG's ``ToUndirected``), the users' static features, the users'
recent training items (for the DIN-style baselines and the DDPG state) and the items'
categories and terms.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from training.data import (
    CATEGORY,
    HAS_TERM,
    IN_CATEGORY,
    ITEM,
    QUERY,
    TERM,
    USER,
    EdgeType,
    Pairs,
    Split,
)

logger = logging.getLogger(__name__)


def reverse_type(et: EdgeType) -> EdgeType:
    return et[2], f"rev_{et[1]}", et[0]


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
    )
    logger.debug(
        "graph data: %s", {f"{k[0]}-{k[1]}-{k[2]}": int(v.shape[1]) for k, v in eid.items()}
    )
    return data


def message_passing_edges(data: GraphData) -> dict[EdgeType, Tensor]:
    """The typed edges (with reverses) the heterogeneous GCN propagates over."""
    return {et: ei for et, ei in data.edge_index_dict.items() if et[1] != "__interactions__"}


__all__ = ["QUERY", "GraphData", "build_graph_data", "last_items", "message_passing_edges"]
