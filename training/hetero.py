"""An export directory as a PyG :class:`~torch_geometric.data.HeteroData`.

:func:`to_hetero_data` reads ``meta.json`` + ``graph.npz`` (``docs/export-format.md``) through
:func:`training.data.load_export`, splits the interactions as the training harness does
(:func:`training.splits.split_interactions`: per user, by time, last → test, second last →
validation) and returns one ``HeteroData`` a PyG user can train any stock model on:

* ``data[t].num_nodes``, ``data[t].node_id`` (``arange(N)``, row ``i`` is the node whose
  external id is ``data.external_ids[t][i]``) and ``data[t].x`` where the export has features
  (their names in ``data.feature_names[t]``);
* ``data[s, rel, d].edge_index`` for every exported relation and its reverse
  ``data[d, "rev_" + rel, s]`` (:func:`training.dataset.reverse_type`, the name PyG's
  ``ToUndirected`` gives it), each with ``time`` (unix
  seconds, ``nan`` when unknown) and ``edge_weight``;
* ``train_mask`` / ``val_mask`` / ``test_mask`` on the user → item interaction relations and
  ``User-SEARCHED->Query`` (and their reverses): the split each edge's (user, item) or
  (user, query) pair belongs to. Relations without masks (catalogue links: terms, categories,
  query → item) are known at training time.

:func:`train_graph` keeps the edges message passing may use (the training ones).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor
from torch_geometric.data import HeteroData

from training.data import ITEM, QUERY, SEARCHED, USER, Pairs, in_sorted, load_export
from training.dataset import reverse_type
from training.splits import Split, split_interactions

logger = logging.getLogger(__name__)

#: Split masks, in the order ``train``, ``val``, ``test``.
MASKS = ("train_mask", "val_mask", "test_mask")


def _pair_keys(pairs: Pairs, n_cols: int) -> NDArray[np.int64]:
    return np.sort(pairs.row.astype(np.int64) * max(n_cols, 1) + pairs.col)


def _split_masks(keys: NDArray[np.int64], splits: tuple[NDArray[np.int64], ...]) -> list[Tensor]:
    return [torch.from_numpy(in_sorted(keys, sorted_keys)) for sorted_keys in splits]


def hetero_data_from_split(split: Split) -> HeteroData:
    """The ``HeteroData`` of one split (see the module docstring)."""
    graph = split.graph
    data = HeteroData()
    data.external_ids = {t: graph.ids[t].tolist() for t in graph.node_types}
    data.feature_names = {t: list(graph.feature_names.get(t, [])) for t in graph.node_types}
    for t in graph.node_types:
        n = graph.num_nodes(t)
        data[t].num_nodes = n
        data[t].node_id = torch.arange(n)
        if t in graph.x:
            data[t].x = torch.from_numpy(graph.x[t])
    n_items, n_queries = max(split.n_items, 1), max(split.n_queries, 1)
    interaction_splits = tuple(_pair_keys(p, n_items) for p in (split.train, split.val, split.test))
    search_splits = tuple(
        _pair_keys(p, n_queries) for p in (split.train_search, split.val_search, split.test_search)
    )
    for et, e in graph.edges.items():
        if et[0] not in data.node_types or et[2] not in data.node_types:
            continue
        index = torch.from_numpy(e.index)
        attrs: dict[str, Tensor] = {
            "time": torch.from_numpy(e.time),
            "edge_weight": torch.from_numpy(e.weight),
        }
        if et[0] == USER and et[2] == ITEM:
            keys = e.index[0] * n_items + e.index[1]
            attrs.update(zip(MASKS, _split_masks(keys, interaction_splits), strict=True))
        elif et == (USER, SEARCHED, QUERY):
            keys = e.index[0] * n_queries + e.index[1]
            attrs.update(zip(MASKS, _split_masks(keys, search_splits), strict=True))
        data[et].edge_index = index
        rev = reverse_type(et)
        data[rev].edge_index = index.flip(0)
        for key, value in attrs.items():
            data[et][key] = value
            data[rev][key] = value
    logger.debug("hetero data: %s", data)
    return data


def to_hetero_data(
    export_dir: Path | str,
    seed: int = 0,
    rewards: dict[str, float] | None = None,
    min_interactions: int = 3,
) -> HeteroData:
    """Load an export directory as a PyG ``HeteroData`` with its leave-one-out split masks.

    Args:
        export_dir: A directory with ``meta.json`` and ``graph.npz``.
        seed: Seed of the split (ties in time are broken at random), as in training.
        rewards: Reward per interaction type (only used to merge repeated events of a pair).
        min_interactions: Users with fewer interactions keep them all in training.

    Raises:
        training.errors.ExportFormatError: The directory is not a valid export.
    """
    split = split_interactions(load_export(Path(export_dir)), seed, rewards or {}, min_interactions)
    return hetero_data_from_split(split)


def train_graph(data: HeteroData) -> HeteroData:
    """A copy of ``data`` with only the edges message passing may use during training: the
    ``train_mask`` edges of masked relations, every edge of the others."""
    out = data.clone()
    for et in out.edge_types:
        store = out[et]
        if "train_mask" not in store:
            continue
        mask = store.train_mask
        for key in list(store.keys()):
            value = store[key]
            if key == "edge_index":
                store[key] = value[:, mask]
            elif isinstance(value, Tensor) and value.shape[:1] == mask.shape:
                store[key] = value[mask]
    return out


__all__ = ["MASKS", "hetero_data_from_split", "to_hetero_data", "train_graph"]
