"""Neighbour-sampled mini-batch training of DP-GCN with PyG's ``LinkNeighborLoader``.

Full-batch training (:func:`training.train.train_epoch`) propagates over the whole graph at
every step; here each step sees only the sampled neighbourhood of a batch of training
interactions: :func:`make_link_loader` builds a ``LinkNeighborLoader`` over
:func:`training.hetero.train_graph` (fan-out per hop, counted per destination node type by
:func:`fanout_by_relation`; negatives drawn by the loader), and :func:`minibatch_epoch`
runs DP-GCN's encoder on each sampled subgraph
(:class:`~training.models.hetero_gcn.HeteroGCN` takes the batch's ``edge_index_dict``) and
scores the batch's labelled pairs. :func:`use_minibatch` is the
switch :func:`training.train.fit` asks (``TrainConfig.optim.batching``, ``minibatch_min_edges``) and
:func:`train_loader` the loader it trains on.

Neighbour sampling in PyG needs the compiled ``pyg-lib`` or ``torch-sparse``; where neither is
installed (this project's environment), :class:`TorchNeighborSampler` draws the same kind of
sample with torch operations (uniform, ``directional`` subgraph; see :func:`_pick`).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
import torch_geometric.typing
from numpy.typing import NDArray
from torch import Tensor
from torch_geometric.data import HeteroData
from torch_geometric.loader import LinkNeighborLoader
from torch_geometric.sampler import (
    EdgeSamplerInput,
    HeteroSamplerOutput,
    NegativeSampling,
    NeighborSampler,
)

from training.allocation import large_blocks_reused
from training.config import TrainConfig
from training.data import ITEM, USER, EdgeType, in_sorted
from training.device import autocast
from training.errors import ConfigError, TrainingError
from training.hetero import hetero_data_from_split, train_graph
from training.models.base import RecModel
from training.models.dpgcn import DPGCN
from training.splits import Split

logger = logging.getLogger(__name__)


class TrainingNegatives(NegativeSampling):
    """Triplet negatives (PyG's ``"triplet"`` mode) of one batch that avoid each positive's
    user's training items, as the full-batch epoch's ``training.data.sample_negatives`` does:
    a draw that is one of the user's training pairs is drawn again, up to ``max_tries``
    rounds (the few left after that are kept). PyG's own negative sampling draws uniformly
    ("TODO: Do not sample false negatives"); on a dense catalogue such as ML-100K about 12 %
    of those negatives are items the user has rated, trained as non-interactions.

    Args:
        base: The loader's negative sampling (``amount`` per positive, ``dst_weight``).
        users: The batch's positives' users (global rows), in the loader's order.
        positives: Sorted keys ``user * n_items + item`` of the training pairs (numpy: the
            membership test is :func:`training.data.in_sorted`).
        n_items: Items (the key's base).
    """

    def __init__(
        self,
        base: NegativeSampling,
        users: Tensor,
        positives: NDArray[np.int64],
        n_items: int,
        max_tries: int = 10,
    ) -> None:
        super().__init__("triplet", base.amount, dst_weight=base.dst_weight)
        self.users, self.positives = users.long(), positives
        self.n_items, self.max_tries = n_items, max_tries

    def is_positive(self, users: Tensor, items: Tensor) -> Tensor:
        """Whether each ``(users[k], items[k])`` is a training pair."""
        keys = (users.long() * self.n_items + items.long()).numpy()
        return torch.from_numpy(in_sorted(keys, self.positives))

    def sample(  # type: ignore[override]
        self, num_samples: int, endpoint: str, num_nodes: int | None = None
    ) -> Tensor:
        out = super().sample(num_samples, endpoint, num_nodes)  # type: ignore[arg-type]
        if endpoint != "dst" or num_samples != len(self.users) * self.amount:
            return out
        users = self.users.repeat_interleave(int(self.amount))  # negative k: positive k // amount
        bad = self.is_positive(users, out)
        for _ in range(self.max_tries):
            idx = bad.nonzero().flatten()
            if len(idx) == 0:
                break
            out[idx] = super().sample(len(idx), endpoint, num_nodes)  # type: ignore[arg-type]
            bad[idx] = self.is_positive(users[idx], out[idx])
        return out


class TrainingSampler(NeighborSampler):
    """PyG's :class:`~torch_geometric.sampler.NeighborSampler` whose triplet negatives avoid
    the users' training items (:class:`TrainingNegatives`); ``positives`` (sorted keys
    ``user * n_items + item``, numpy) is set by :func:`make_link_loader`, ``None``: PyG's
    uniform negatives."""

    positives: NDArray[np.int64] | None = None

    def sample_from_edges(  # type: ignore[override]
        self, inputs: EdgeSamplerInput, neg_sampling: NegativeSampling | None = None
    ) -> HeteroSamplerOutput:
        if neg_sampling is not None and neg_sampling.is_triplet() and self.positives is not None:
            assert isinstance(inputs.input_type, tuple)
            n_items = self.num_nodes[inputs.input_type[-1]]  # type: ignore[index]
            neg_sampling = TrainingNegatives(neg_sampling, inputs.row, self.positives, n_items)
        out = super().sample_from_edges(inputs, neg_sampling)
        assert isinstance(out, HeteroSamplerOutput)
        return out


class TorchNeighborSampler(TrainingSampler):
    """PyG's :class:`~torch_geometric.sampler.NeighborSampler` (heterogeneous graphs,
    ``directional`` subgraphs) with its sampling step in torch, for installations without
    ``pyg-lib`` / ``torch-sparse``. Per hop and relation, each node reached in the previous hop
    keeps up to ``num_neighbors`` incoming edges of the sampler's CSC (``-1``: all): all of
    them when it has no more, else that many uniform draws with repeated draws kept once
    (:func:`_pick`); random numbers come from torch's generator. As ``pyg-lib``'s sampler, it
    returns the nodes in the order they were reached and the counts per hop
    (``num_sampled_nodes``: the seeds, then each hop's new nodes, per node type;
    ``num_sampled_edges``: each hop's edges, per relation), which a batch carries for PyG's
    ``trim_to_layer``."""

    def _sample(  # type: ignore[override]
        self,
        seed: dict[str, Tensor],
        seed_time: dict[str, Tensor] | None = None,
        **kwargs: Any,
    ) -> HeteroSamplerOutput:
        if not isinstance(seed, dict) or seed_time is not None or self.disjoint:
            raise ValueError("TorchNeighborSampler samples heterogeneous graphs, not in time")
        fanout = self.num_neighbors.get_mapped_values(self.edge_types)
        assert isinstance(fanout, dict)
        local = self._local_ids()
        nodes: dict[str, list[Tensor]] = {t: [] for t in self.node_types}
        count = dict.fromkeys(self.node_types, 0)

        def add(t: str, ids: Tensor) -> Tensor:
            new = torch.unique(ids[local[t][ids] < 0])
            local[t][new] = torch.arange(count[t], count[t] + len(new))
            count[t] += len(new)
            nodes[t].append(new)
            return new

        num_nodes: dict[str, list[int]] = {t: [] for t in self.node_types}
        num_edges: dict[EdgeType, list[int]] = {et: [] for et in self.edge_types}
        try:
            frontier = {t: add(t, ids.long()) for t, ids in seed.items()}
            for t in self.node_types:
                num_nodes[t].append(len(frontier[t]) if t in frontier else 0)
            rows: dict[EdgeType, list[Tensor]] = {et: [] for et in self.edge_types}
            cols: dict[EdgeType, list[Tensor]] = {et: [] for et in self.edge_types}
            edges: dict[EdgeType, list[Tensor]] = {et: [] for et in self.edge_types}
            for hop in range(self.num_neighbors.num_hops):
                found: dict[str, list[Tensor]] = {}
                sampled: list[tuple[EdgeType, Tensor]] = []
                for et in self.edge_types:
                    dst = frontier.get(et[2])
                    k = fanout["__".join(et)][hop]
                    if dst is None or len(dst) == 0 or k == 0:
                        num_edges[et].append(0)
                        continue
                    rel = self.to_rel_type[et]
                    pos, owner = _pick(self.colptr_dict[rel], dst, k)
                    src = self.row_dict[rel][pos]
                    found.setdefault(et[0], []).append(src)
                    sampled.append((et, src))
                    edges[et].append(pos)
                    cols[et].append(local[et[2]][dst[owner]])
                    num_edges[et].append(len(pos))
                frontier = {t: add(t, torch.cat(ids)) for t, ids in found.items()}
                for t in self.node_types:
                    num_nodes[t].append(len(frontier[t]) if t in frontier else 0)
                for et, src in sampled:  # local ids exist once the hop's new nodes are added
                    rows[et].append(local[et[0]][src])
        finally:  # the map back to "unseen" for the next batch, whatever happened here
            for t, parts in nodes.items():
                for ids in parts:
                    local[t][ids] = -1
        empty = torch.zeros(0, dtype=torch.long)
        return HeteroSamplerOutput(
            node={t: torch.cat(v) if v else empty for t, v in nodes.items()},
            row={et: torch.cat(v) if v else empty for et, v in rows.items()},
            col={et: torch.cat(v) if v else empty for et, v in cols.items()},
            edge={et: torch.cat(v) if v else empty for et, v in edges.items()},
            batch=None,
            num_sampled_nodes=num_nodes,
            num_sampled_edges=num_edges,
        )

    def _local_ids(self) -> dict[str, Tensor]:
        """Per node type, the batch-local id of each node (``-1``: not in the batch yet).
        Allocated once and reset after each batch at the batch's nodes only, so a batch
        costs its own size, not the graph's node count."""
        local: dict[str, Tensor] | None = getattr(self, "_local", None)
        if local is None:
            local = {t: torch.full((n,), -1, dtype=torch.long) for t, n in self.num_nodes.items()}
            self._local = local
        return local


def _pick(colptr: Tensor, dst: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """CSC positions of up to ``k`` incoming edges per node of ``dst`` (all if ``k < 0`` or
    the node has at most ``k``), and the index into ``dst`` of each position's node.

    A node with more than ``k`` edges gets ``k`` uniform draws of its edges, repeated draws
    kept once (so at most ``k`` distinct edges, fewer only on a collision). The cost is
    ``O(len(dst) · k)`` whatever the degrees: a batch reaching an item with a million
    interactions does not sort them."""
    start, deg = colptr[dst], colptr[dst + 1] - colptr[dst]
    everything = deg if k < 0 else torch.clamp(deg, max=k)
    take_all = (deg <= k) | (k < 0)
    counts = torch.where(take_all, everything, torch.zeros_like(deg))
    owner = torch.repeat_interleave(torch.arange(len(dst)), counts)
    first = torch.cumsum(counts, 0) - counts
    pos = start[owner] + torch.arange(len(owner)) - first[owner]
    if k < 0:
        return pos, owner
    big = (~take_all).nonzero().flatten()
    if len(big) == 0:
        return pos, owner
    draws = (torch.rand(len(big), k, dtype=torch.double) * deg[big, None]).long()
    draws = draws.sort(dim=1).values
    keep = torch.ones_like(draws, dtype=torch.bool)
    keep[:, 1:] = draws[:, 1:] != draws[:, :-1]
    big_owner = big[:, None].expand(-1, k)[keep]
    big_pos = start[big][:, None].expand(-1, k)[keep] + draws[keep]
    return torch.cat([pos, big_pos]), torch.cat([owner, big_owner])


def make_link_loader(
    graph: HeteroData,
    edge_type: EdgeType,
    num_neighbors: list[int] | dict[EdgeType, list[int]],
    batch_size: int,
    num_negatives: int = 4,
    shuffle: bool = True,
    label_index: Tensor | None = None,
    negative_weight: Tensor | None = None,
    mode: str = "binary",
    exclude: Tensor | None = None,
) -> LinkNeighborLoader:
    """A ``LinkNeighborLoader`` over the training interactions ``edge_type`` of ``graph`` (a
    :func:`training.hetero.train_graph`): ``num_neighbors[h]`` sampled neighbours per relation
    at hop ``h``, ``num_negatives`` random items per positive drawn by the loader
    (``edge_label`` 1 for positives, 0 for negatives). ``label_index`` ``[2, P]`` replaces the
    positives (default: the relation's edges), e.g. the harness's unique training pairs of
    every interaction type (``Split.train``). ``negative_weight`` (one weight per item) draws
    the negatives from that distribution instead of uniformly (zero: never drawn).

    ``mode`` is PyG's negative sampling mode: ``"binary"`` draws negative pairs with a random
    user *and* a random item (``edge_label_index`` / ``edge_label``); ``"triplet"`` draws the
    negative items for each positive's own user (``src_index``, ``dst_pos_index``,
    ``dst_neg_index`` on the node stores), as the full-batch epoch does. ``exclude`` ``[2, P]``
    (user, item) pairs, triplet mode only: a user's negatives are never among that user's
    pairs there (:class:`TrainingNegatives`; the full-batch epoch excludes the training
    pairs the same way)."""
    if exclude is not None and mode != "triplet":
        raise ConfigError("negatives avoid known pairs in triplet sampling only")
    sampler: TrainingSampler
    if torch_geometric.typing.WITH_PYG_LIB or torch_geometric.typing.WITH_TORCH_SPARSE:
        sampler = TrainingSampler(graph, num_neighbors=num_neighbors)
    else:
        with warnings.catch_warnings():  # PyG's advice to install pyg-lib, answered here
            warnings.filterwarnings("ignore", message=".*without a 'pyg-lib' installation")
            sampler = TorchNeighborSampler(graph, num_neighbors=num_neighbors)
    if exclude is not None:
        n_items = graph[edge_type[-1]].num_nodes
        sampler.positives = np.unique((exclude[0].long() * n_items + exclude[1].long()).numpy())
    return LinkNeighborLoader(
        graph,
        num_neighbors=num_neighbors,
        edge_label_index=(
            edge_type,
            graph[edge_type].edge_index if label_index is None else label_index,
        ),
        neg_sampling=NegativeSampling(mode, amount=num_negatives, dst_weight=negative_weight),
        batch_size=batch_size,
        shuffle=shuffle,
        neighbor_sampler=sampler,
    )


def supports_minibatch(model: RecModel) -> bool:
    """Whether :func:`minibatch_epoch` can train ``model`` (the DP-GCN family: its encoder
    runs on a sampled subgraph's ``edge_index_dict``)."""
    return isinstance(model, DPGCN) and model.gcn.num_layers > 0


def use_minibatch(model: RecModel, n_train: int, config: TrainConfig) -> bool:
    """The switch between full-batch and mini-batch epochs (``TrainConfig.optim.batching``):
    ``"auto"`` picks mini-batches from ``minibatch_min_edges`` training interactions on, for
    models that support them.

    Raises:
        ConfigError: ``batching="minibatch"`` for a model that cannot train on mini-batches.
    """
    if config.optim.batching == "full":
        return False
    if config.optim.batching == "minibatch":
        if not supports_minibatch(model):
            raise ConfigError(
                f"TrainConfig.optim.batching='minibatch' needs a DP-GCN model with graph layers; "
                f"{config.model.name!r} trains full-batch only"
            )
        return True
    return n_train >= config.optim.minibatch_min_edges and supports_minibatch(model)


def structure(graph: HeteroData) -> HeteroData:
    """``graph``'s node counts and ``edge_index`` alone: what :func:`minibatch_loss` reads of
    a batch (the model holds the features). The loader gathers every node and edge attribute
    of a graph for each batch (user features, edge times, weights, split masks): a cost per
    step that buys nothing here."""
    out = HeteroData()
    for t in graph.node_types:
        out[t].num_nodes = graph[t].num_nodes
    for et in graph.edge_types:
        out[et].edge_index = graph[et].edge_index
    return out


def fanout_by_relation(
    graph: HeteroData, fanout: list[int], per: str = "type"
) -> dict[EdgeType, list[int]]:
    """PyG's ``num_neighbors`` per relation of ``graph`` for ``fanout[h]`` neighbours at hop
    ``h``: ``per="relation"`` gives each relation ``fanout[h]``; ``per="type"`` shares
    ``fanout[h]`` among the relations into a node type, ``ceil(fanout[h] / R_t)`` each (at
    least one per relation), so a node draws about ``fanout[h]`` neighbours whatever the
    number of relations reaching it (``-1``, all, stays ``-1``).

    Per relation, a hop from a user of the shop graph (4 relations in) draws up to 4 × the
    fan-out and one from an item (6 relations in) 6 ×, so two hops from a batch reach a field
    of up to ``seeds × 60 × 30`` edges: most of the graph up to 1/8 of the full-scale shop,
    and a per-step cost that grows with the graph until then. Per type the field is about
    ``seeds × fanout[0] × fanout[1]`` edges, a bound independent of the graph."""
    if per not in ("type", "relation"):
        raise ConfigError(f"fan-out is counted per 'type' or per 'relation', not {per!r}")
    into: dict[str, int] = {}
    for et in graph.edge_types:
        into[et[2]] = into.get(et[2], 0) + 1
    out: dict[EdgeType, list[int]] = {}
    for et in graph.edge_types:
        share = into[et[2]] if per == "type" else 1
        out[et] = [k if k < 0 else max(1, -(-k // share)) for k in fanout]
    return out


def train_loader(
    split: Split,
    config: TrainConfig,
    negative_pool: np.ndarray | None = None,
    positions: np.ndarray | None = None,
) -> LinkNeighborLoader:
    """The mini-batch loader of ``split``: a ``LinkNeighborLoader`` over its training graph
    (validation and test edges left out), positives the harness's unique training pairs
    (``split.train``, every interaction type), ``config.optim.num_negatives`` negative items per
    positive for the positive's own user (triplet sampling) drawn from ``negative_pool``
    (item rows; default every item), none of them one of that user's training items (as in
    the full-batch epoch: :class:`TrainingNegatives`), and
    :meth:`TrainConfig.fanout_per_layer` neighbours per hop, counted per destination node type
    (:func:`fanout_by_relation`; ``config.optim.fanout_per="relation"`` for per relation).
    ``positions`` (rows of ``split.train``) keeps only those positives: one
    rank's shard in distributed training."""
    graph = structure(train_graph(hetero_data_from_split(split)))
    edge_type = next((et for et in graph.edge_types if et[0] == USER and et[2] == ITEM), None)
    if edge_type is None:
        raise TrainingError("the export has no User → Item relation to train on")
    every = torch.as_tensor(np.stack([split.train.row, split.train.col]).astype(np.int64))
    pairs = every if positions is None else every[:, torch.as_tensor(positions)]
    weight = None
    if negative_pool is not None:
        weight = torch.zeros(graph[ITEM].num_nodes)
        weight[torch.as_tensor(negative_pool)] = 1.0
    return make_link_loader(
        graph,
        edge_type,
        fanout_by_relation(graph, config.fanout_per_layer(), config.optim.fanout_per),
        config.optim.batch_size,
        config.optim.num_negatives,
        label_index=pairs,
        negative_weight=weight,
        mode="triplet",
        exclude=every,
    )


def _labelled_pairs(batch: HeteroData, edge_type: EdgeType) -> tuple[Tensor, Tensor]:
    """The batch's scored (user, item) pairs ``[2, P]`` (batch-local rows) and their labels:
    the loader's ``edge_label_index`` / ``edge_label`` (binary sampling), or each positive
    followed by its user's negatives (triplet sampling)."""
    store = batch[edge_type]
    if "edge_label" in store:
        return store.edge_label_index, store.edge_label.float()
    src = batch[edge_type[0]].src_index
    pos = batch[edge_type[-1]].dst_pos_index
    neg = batch[edge_type[-1]].dst_neg_index.reshape(len(src), -1)
    users = torch.cat([src, src.repeat_interleave(neg.shape[1])])
    labels = torch.zeros(len(users), device=src.device)
    labels[: len(src)] = 1.0
    return torch.stack([users, torch.cat([pos, neg.reshape(-1)])]), labels


def hop_counts(batch: HeteroData) -> dict[str, list[int]] | None:
    """The batch's nodes of each type per hop, seeds first (the sampler's
    ``num_sampled_nodes``), or ``None`` where the sampler does not count them."""
    counts = {t: getattr(batch[t], "num_sampled_nodes", None) for t in batch.node_types}
    if any(c is None for c in counts.values()):
        return None
    return {t: [int(n) for n in c] for t, c in counts.items() if c is not None}


def minibatch_loss(model: DPGCN, batch: HeteroData, edge_type: EdgeType) -> tuple[Tensor, Tensor]:
    """The loss of one sampled batch and its labels: DP-GCN's vectors of the batch
    (``DPGCN.encode_batch``: input vectors, static user features fused, computed for the
    batch's nodes only, so the cost of a step does not grow with the graph's node count; the
    model's cold-start simulation over the batch's items in training mode; the propagation
    over the batch's subgraph), the score head on its users and items, BCE over its labelled
    pairs (positives and the loader's negatives, binary or triplet sampling) plus the model's
    ``penalty`` of those pairs. Where the sampler counts the batch's nodes per hop
    (:func:`hop_counts`), each layer of the encoder computes only the rows the seeds need
    (:class:`~training.sparse.TrimmedStack`)."""
    enc = model.encode_batch(
        {t: batch[t].n_id for t in batch.node_types}, batch.edge_index_dict, hop_counts(batch)
    )
    pairs, labels = _labelled_pairs(batch, edge_type)
    logits = model.score(enc, pairs[0], pairs[1])
    loss = F.binary_cross_entropy_with_logits(logits.float(), labels)
    penalty = model.penalty(enc, pairs[0], pairs[1])
    if penalty is not None:
        loss = loss + penalty
    return loss, labels


def minibatch_epoch(
    model: DPGCN,
    loader: LinkNeighborLoader,
    optimizer: torch.optim.Optimizer,
    device: torch.device | None = None,
    scaler: torch.amp.GradScaler | None = None,
    amp: bool = False,
    step: Callable[..., tuple[Tensor, Tensor]] | None = None,
) -> float:
    """One pass over the loader's interactions, one optimisation step per batch
    (:func:`minibatch_loss`). Batches move to ``device`` (default: the model's); ``amp`` runs
    the forward pass under CUDA autocast with ``scaler``. ``step(minibatch_loss, batch,
    edge_type)`` computes the loss instead of calling it directly (distributed training
    passes its ``DistributedDataParallel`` wrapper). The steps run with
    :func:`large_blocks_reused`. Returns the mean BCE per pair."""
    model.train()
    edge_type = loader.input_data.input_type
    assert isinstance(edge_type, tuple), "a loader over a heterogeneous graph's relation"
    device = device or model.head.bias.device
    scaler = scaler or torch.amp.GradScaler("cuda", enabled=False)
    total, count = 0.0, 0
    with large_blocks_reused():
        for batch in loader:
            batch = batch.to(device)
            with autocast(device, amp):
                if step is None:
                    loss, labels = minibatch_loss(model, batch, edge_type)
                else:
                    loss, labels = step(minibatch_loss, batch, edge_type)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            total += float(loss.detach()) * len(labels)
            count += len(labels)
    logger.debug("mini-batch epoch: %d pairs, loss %.4f", count, total / max(count, 1))
    return total / max(count, 1)


__all__ = [
    "TorchNeighborSampler",
    "TrainingNegatives",
    "TrainingSampler",
    "make_link_loader",
    "minibatch_epoch",
    "minibatch_loss",
    "structure",
    "supports_minibatch",
    "train_loader",
    "use_minibatch",
]
