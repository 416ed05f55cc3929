"""Vectors for nodes that entered the graph after the served model was trained, without training.

The served model directory of an inductive model (DP-GCN) holds its weights (``model.pt``) and
what their per-node rows are indexed by (``node_keys.npz``, external ids and side tokens). Given
a newer export of the same graph, :func:`encode_nodes` builds the same model on that export,
moves the trained rows onto it with :func:`training.models.dpgcn.transfer_state` (new nodes get
the type's learned "unknown" ID vector plus the projection of their side information, new side
tokens a zero vector), propagates over the complete graph in eval mode, as
:func:`training.train.serving_encoding` does for a trained model, and returns the dot-product
vectors of the nodes asked for. No gradient step is taken: the vectors of the nodes the model
was trained on stay those of the active version (only the new nodes' vectors are written).

This module reads files only (no database, no task queue): ``workers/refresh.py`` runs it on a
fresh export and writes the result to the nodes (``docs/inductive.md``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from training.data import ITEM, QUERY, USER, load_export
from training.dataset import build_graph_data
from training.errors import ModelDirError, TrainingError
from training.loop import NotInductiveError, dot_vectors
from training.models import build_model
from training.models.dpgcn import transfer_state
from training.splits import split_interactions
from training.train import load_checkpoint

logger = logging.getLogger(__name__)

#: Node types whose vectors are served (written to the graph).
SERVED_TYPES = (USER, ITEM, QUERY)
#: The file of a model directory that makes it refreshable (``training.train.write_model_dir``).
NODE_KEYS_FILE = "node_keys.npz"


@dataclass(frozen=True)
class NodeVectors:
    """Vectors of some nodes of one type: ``vectors[k]`` belongs to the node ``ids[k]``."""

    ids: np.ndarray  # [N] str
    vectors: np.ndarray  # [N, D] float32

    def __len__(self) -> int:
        return len(self.ids)


def refresh_blocker(model_dir: Path) -> str | None:
    """Why the model in ``model_dir`` cannot give new nodes vectors without retraining, or
    ``None`` when it can (as far as its files tell: :func:`encode_nodes` also checks that the
    rebuilt model is inductive). Cheap: reads no export and builds no model."""
    model_dir = Path(model_dir)
    if not (model_dir / "model.pt").is_file():
        return f"{model_dir} has no model.pt"
    if not (model_dir / NODE_KEYS_FILE).is_file():
        return (
            f"{model_dir} has no {NODE_KEYS_FILE}: its model has no per-node rows to move onto a "
            "newer graph (not DP-GCN, or trained before node keys were saved); new nodes get "
            "vectors at the next training"
        )
    return None


def load_node_keys(model_dir: Path) -> dict[str, np.ndarray]:
    """The ids and side tokens the trained rows of ``model_dir`` are indexed by."""
    path = Path(model_dir) / NODE_KEYS_FILE
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: np.asarray(npz[k], dtype=str) for k in npz.files}
    except (OSError, ValueError) as e:
        raise ModelDirError(f"{path}: cannot read node keys ({e})") from e


def encode_nodes(
    model_dir: Path,
    export_dir: Path,
    wanted: Mapping[str, Iterable[str]] | None = None,
) -> dict[str, NodeVectors]:
    """The active model's vectors of nodes of a newer export, computed on the CPU.

    ``wanted`` maps a served node type (``"User"``, ``"Item"``, ``"Query"``) to the ids to
    return; ids absent from the export are left out (the caller can tell which by comparing).
    ``None``: every node of the export the model was not trained on (its id is not in the
    model's node keys). Raises :class:`~training.train.NotInductiveError` for a model that
    cannot score nodes it never saw, :class:`~training.errors.ModelDirError` for a directory
    without what this needs or a graph the model cannot be rebuilt on."""
    started = time.perf_counter()
    model_dir, export_dir = Path(model_dir), Path(export_dir)
    blocker = refresh_blocker(model_dir)
    if blocker is not None:
        raise NotInductiveError(blocker)
    config, state = load_checkpoint(model_dir / "model.pt")
    # The weights come from the checkpoint: an initialisation that trains word vectors first
    # (word2vec_terms) would only cost time.
    config = config.replace({"model.dpgcn.word2vec_terms": False, "device": "cpu"})
    old_keys = load_node_keys(model_dir)
    graph = load_export(export_dir)
    # The complete graph, every interaction a training edge, as serving_encoding propagates.
    full = split_interactions(graph, config.seed, config.policy.reward_of(), 2**62)
    data = build_graph_data(full, torch.device("cpu"), config.model.history_len)
    model = build_model(config.model.name, data, config)
    if not getattr(model, "inductive", False):
        raise NotInductiveError(
            f"model {config.model.name!r} of {model_dir} cannot score nodes it was not trained on"
        )
    new_keys = model.state_keys(data)
    if new_keys is None:
        raise NotInductiveError(f"model {config.model.name!r} has no per-node rows to move")
    try:
        model.load_state_dict(transfer_state(state, old_keys, new_keys))
    except (RuntimeError, ValueError) as e:
        raise ModelDirError(
            f"the model of {model_dir} cannot be rebuilt on {export_dir} (node or relation types "
            f"changed since training?): {e}"
        ) from e
    model.eval()
    with torch.no_grad():
        enc = model.dot_encoding(model.encode())
    if enc is None:
        raise TrainingError(f"model {config.model.name!r} is not a dot-product model")
    user, item, query = dot_vectors(enc, data)
    vectors = {USER: user, ITEM: item, QUERY: query}
    out: dict[str, NodeVectors] = {}
    for node_type in SERVED_TYPES:
        ids = np.asarray(graph.ids.get(node_type, np.zeros(0, str)), dtype=str)
        matrix = vectors[node_type]
        if matrix is None or len(ids) == 0:
            continue
        if wanted is None:
            pick = ~np.isin(ids, old_keys.get(node_type, np.zeros(0, str)))
        else:
            pick = np.isin(ids, np.asarray(list(wanted.get(node_type, ())), dtype=str))
        rows = np.flatnonzero(pick)
        if len(rows):
            out[node_type] = NodeVectors(ids[rows], matrix[rows].astype(np.float32))
    logger.info(
        "encoded %s new node(s) with %s of %s in %.2fs",
        {t: len(v) for t, v in out.items()},
        config.model.name,
        model_dir,
        time.perf_counter() - started,
    )
    return out
