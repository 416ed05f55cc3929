"""DP-GCN: side-information inputs + static-feature fusion + typed propagation (+ DDPG)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor
from torch_geometric.utils import bipartite_subgraph

from training.data import ITEM, QUERY, USER, EdgeType
from training.dataset import GraphData, message_passing_edges, side_token_keys
from training.models.base import DotEncoding, DotProductModel, suggest_training
from training.models.dpgcn_settings import COLD_SIMULATION
from training.models.feature_fusion import FeatureFusion
from training.models.hetero_gcn import HeteroGCN
from training.models.node_embedding import NodeEmbedding
from training.models.score_head import ScoreHead
from training.sparse import ColdStartStack, RelationStack, is_interaction

if TYPE_CHECKING:
    import optuna


class DPGCN(DotProductModel):
    r"""DP-GCN (paper §3.3): a multi-level fusion of heterogeneous graph convolutions, static
    user features and a DDPG decision layer.

    1. :class:`~training.models.node_embedding.NodeEmbedding` gives every user, item, query,
       term and category an input vector: its ID vector plus a learned projection of its side
       information (an item's category path, terms and price bucket; a query's terms). Users,
       items and queries without training interactions use a learned "unknown" vector
       instead of their untrained ID vector, and ID dropout trains that path, so the model
       scores items and users it has not seen in training (``inductive``).
       *Cold-start simulation* (DropoutNet, Volkovs et al. 2017, on a graph): at every
       training step a share ``cold_simulation`` of the trained items is computed exactly as
       an item without training interactions: their ID vector is swapped for the unknown
       vector **and** their interaction edges (user→item of every type, query→item, and the
       reverses) are left out of that step's propagation, keeping their category and term
       edges. ID dropout alone keeps the edges, so a dropped item still hears its users and
       the unknown path never learns to score a cold item on the warm items' scale.
    2. :class:`~training.models.feature_fusion.FeatureFusion` fuses the user's static
       features into the user's input vector, before propagation: one learned vector per
       feature value, summed in, :math:`\mathbf{x}^{(0)}_u = \mathbf{x}_u + \mathbf{W}\mathbf{s}_u`
       (skipped in the D-GCN ablation), so the features reach items and other users through
       the graph and are smoothed with everything else.
    3. :class:`~training.models.hetero_gcn.HeteroGCN` propagates the input vectors along the
       typed relations (user–item interactions, user–query searches, query→item,
       query/item→term, item→category, and their reverses), each relation mean-normalised,
       the relations into a type averaged, layers averaged: :math:`\mathbf{h}_v`.
    4. :class:`~training.models.score_head.ScoreHead` is the output layer (eq. 6), the inner
       product of the propagated vectors and a global bias:

       .. math::
           \hat y_{ui} = \sigma\big(\langle \mathbf{h}_u, \mathbf{h}_i\rangle + b\big),

       trained with binary cross-entropy over positives and sampled negatives (eq. 7).
    5. The DDPG decision layer (:class:`training.policy.DDPGPolicy`) is trained afterwards on
       the frozen vectors: its action :math:`\mathbf{a}` moves the user vector,
       :math:`\mathbf{u}' = \mathbf{u} + \alpha s \mathbf{a}`, re-weighting every item score by
       :math:`\alpha s \langle \mathbf{a}, \mathbf{i} \rangle` (``has_policy``).

    With one relation, no side information and no static features, steps 1, 3 and 4 are
    LightGCN with mean instead of symmetric normalisation. The per-type matrices, LayerNorm
    and ReLU of earlier versions, a learned item map in the output layer and a fusion MLP
    (after propagation, then on the input) were removed: each let users or items fit the
    training pairs apart from their graph neighbourhood and cost validation NDCG@10 on
    MovieLens-100K (docs/model.md, "Quality" and "Fourth round").

    Args:
        data (GraphData): Training graph and side tensors.
        dim (int): Embedding dimension :math:`D`.
        num_layers (int): Propagation layers.
        dropout (float, optional): Dropout between propagation layers. (default: :obj:`0.0`)
        use_fusion (bool, optional): Fuse static user features. (default: :obj:`True`)
        use_policy (bool, optional): Train a DDPG decision layer. (default: :obj:`True`)
        pretrained (dict[str, Tensor], optional): Initial vectors per node type (e.g. Term).
        use_side_features (bool, optional): Add the projection of side information to the
            input vectors. (default: :obj:`True`)
        id_dropout (float, optional): Probability of replacing a node's ID vector by its
            type's unknown vector at each training step. (default: :obj:`0.1`)
        cold_simulation (float, optional): Share of the trained items computed as cold items
            at each training step (ID vector and interaction edges dropped together; ``0``:
            off). (default: :obj:`COLD_SIMULATION`)
        relation_mean (str, optional): How :class:`HeteroGCN` averages the relations into a
            node: ``"node"``, over those the node has neighbours under; ``"type"``, over every
            relation into its type. (default: :obj:`"type"`)
        side_scale (float, optional): Learning-rate multiplier of the side-information token
            vectors (:class:`~training.models.node_embedding.SideProjection`).
            (default: :obj:`1.0`)

    With many cold items (the cold-item setting of docs/model.md, "Cold items on the warm
    items' scale": ``cold_simulation=0.5``, ``relation_mean="node"``, ``side_scale=5.0``) the
    last two put an item without interactions on the warm items' scale; they are settings
    (``TrainConfig.model.dpgcn``), not derived from the share.

    Shapes:
        - **output of** :meth:`encode`: user :math:`(|U|, D)`, item :math:`(|I|, D)`, query
          :math:`(|Q|, D)` vectors; ``score`` returns logits :math:`(B,)`.
    """

    #: Scores users and items without training interactions from their side information and
    #: graph neighbours (the cold-item protocol reports only such models).
    inductive = True

    def state_keys(self, data: GraphData) -> dict[str, Any]:
        return dict(node_keys(data))

    def __init__(
        self,
        data: GraphData,
        dim: int,
        num_layers: int,
        dropout: float = 0.0,
        use_fusion: bool = True,
        use_policy: bool = True,
        pretrained: dict[str, Tensor] | None = None,
        use_side_features: bool = True,
        id_dropout: float = 0.1,
        cold_simulation: float = COLD_SIMULATION,
        relation_mean: str = "type",
        side_scale: float = 1.0,
    ) -> None:
        super().__init__(data)
        if not 0.0 <= cold_simulation < 1.0:
            raise ValueError(f"cold_simulation must be in [0, 1), got {cold_simulation}")
        #: Share of the trained items computed as cold at each training step (needs the side
        #: information: without it a cold item has nothing but the unknown vector).
        self.cold_simulation = cold_simulation if use_side_features else 0.0
        self.inductive = use_side_features
        self.has_policy = use_policy
        self.use_fusion = use_fusion
        self.user_x = data.user_x
        num_nodes = dict(data.num_nodes)
        for t in (USER, ITEM):
            num_nodes[t] = max(num_nodes.get(t, 0), 1)
        self._num_nodes = num_nodes
        self.embedding = NodeEmbedding(
            num_nodes,
            dim,
            pretrained,
            trained=data.trained,
            side=data.side if use_side_features else None,
            id_dropout=id_dropout,
            side_scale=side_scale,
        )
        node_types = list(self.embedding.num_nodes)
        outputs = [t for t in (USER, ITEM, QUERY) if t in node_types]
        self._edges = message_passing_edges(data)
        self.stack = RelationStack.build(self._edges, num_nodes, node_types, head_types=outputs)
        self._cold_stack: ColdStartStack | None = None
        self.gcn = HeteroGCN(
            node_types,
            [et for rels in self.stack.relations.values() for et in rels],
            dim,
            num_layers,
            dropout,
            output_types=outputs,
            relation_mean=relation_mean,
        )
        self.fusion = FeatureFusion(dim, data.user_feature_dim) if use_fusion else None
        self.head = ScoreHead()
        self.reset_parameters()

    def use_graph(self, data: GraphData) -> None:
        self._edges = message_passing_edges(data)
        self.stack = RelationStack.build(
            self._edges,
            self._num_nodes,
            self.stack.node_types,
            head_types=list(self.stack.head_types),
        )
        self._cold_stack = None
        self.user_x = data.user_x

    def reset_parameters(self) -> None:
        self.embedding.reset_parameters()
        if self.fusion is not None:
            self.fusion.reset_parameters()
        self.head.reset_parameters()

    def inputs(
        self, n_id: dict[str, Tensor] | None = None, cold: Tensor | None = None
    ) -> dict[str, Tensor]:
        """The layer-0 vectors of every node type: :class:`NodeEmbedding`'s, with the static
        user features fused into the users' (steps 1–2). With ``n_id`` (node type → row ids:
        a mini-batch's ``batch[t].n_id``, :mod:`training.minibatch`) only those rows, in that
        order, computed for those rows alone (``inputs()[t][n_id[t]]``). ``cold`` (bool per
        returned item row) gives those items the unknown vector (:meth:`sample_cold`)."""
        x = self.embedding(n_id, None if cold is None else {ITEM: cold})
        if self.fusion is None or USER not in x:
            return x
        if n_id is not None:
            return {**x, USER: self.fusion(x[USER], self.user_x[n_id[USER]])}
        user = x[USER]
        fused = self.fusion(user[: self.n_users], self.user_x)
        if len(user) != self.n_users:  # the padding row of a graph without users
            fused = torch.cat([fused, user[self.n_users :]])
        return {**x, USER: fused}

    def sample_cold(self, items: Tensor | None = None) -> Tensor | None:
        """The items of one training step computed as cold (bool per item row, or per entry
        of ``items``, the rows of a mini-batch): each trained item with probability
        :attr:`cold_simulation`; ``None`` in eval mode or when the share is 0."""
        trained = self.embedding.trained_mask(ITEM)
        if not self.training or self.cold_simulation <= 0 or trained is None:
            return None
        if items is not None:
            trained = trained[items]
        return trained & (torch.rand(len(trained), device=trained.device) < self.cold_simulation)

    def encode(self) -> DotEncoding:
        """Whole-graph vectors; in training mode with cold-start simulation, the step's
        sampled items lose their ID vector and interaction edges (:meth:`sample_cold`)."""
        cold = self.sample_cold()
        stack = self.stack
        if cold is not None:
            if self._cold_stack is None:
                self._cold_stack = ColdStartStack(self._edges, self._num_nodes, self.stack)
            stack = self._cold_stack.without(cold)
        h = self.gcn(self.inputs(cold=cold), stack)
        return self.head(_first(h[USER], self.n_users), _first(h[ITEM], self.n_items), h.get(QUERY))

    def encode_batch(
        self,
        n_id: dict[str, Tensor],
        edge_index_dict: dict[EdgeType, Tensor],
        num_sampled_nodes: dict[str, list[int]] | None = None,
    ) -> DotEncoding:
        """The vectors of a sampled mini-batch (node type → ``batch[t].n_id``, the batch's
        batch-local ``edge_index_dict``): input rows of the batch's nodes only, cold-start
        simulation over the batch's items in training mode, propagation over the subgraph.
        With ``num_sampled_nodes`` (``batch[t].num_sampled_nodes``) the propagation computes
        only what the seeds need and returns the seeds' vectors alone (``HeteroGCN.forward``)."""
        cold = self.sample_cold(n_id[ITEM]) if ITEM in n_id else None
        if cold is not None:
            sizes = {t: len(v) for t, v in n_id.items()}
            edge_index_dict = drop_interactions(edge_index_dict, ~cold, sizes)
        h = self.gcn(self.inputs(n_id, cold), edge_index_dict, num_sampled_nodes)
        return self.head(h[USER], h[ITEM], h.get(QUERY))


def drop_interactions(
    edges: dict[EdgeType, Tensor], keep_item: Tensor, num_nodes: dict[str, int]
) -> dict[EdgeType, Tensor]:
    """``edges`` without the interaction edges (:func:`is_interaction`) of the items that
    ``keep_item`` (bool per item row) marks False; other relations unchanged."""
    out: dict[EdgeType, Tensor] = {}
    for et, ei in edges.items():
        if not is_interaction(et):
            out[et] = ei
            continue
        src, _, dst = et
        keep = (
            keep_item if src == ITEM else ei.new_ones(num_nodes[src], dtype=torch.bool),
            keep_item if dst == ITEM else ei.new_ones(num_nodes[dst], dtype=torch.bool),
        )
        out[et] = bipartite_subgraph(keep, ei, size=(num_nodes[src], num_nodes[dst]))[0]
    return out


def _first(x: Tensor, n: int) -> Tensor:
    """The first ``n`` rows of ``x``; ``x`` itself when it has ``n`` (tables hold at least one
    row, and the backward of a slice allocates a zero-filled gradient of the whole table)."""
    return x if len(x) == n else x[:n]


def node_keys(data: GraphData) -> dict[str, np.ndarray]:
    """What a trained DP-GCN's per-row tensors are indexed by, as stable names: the external
    ids of every node type (``"User"``, ``"Item"``, …) and the side tokens of each type
    (``"side.Item"``: :func:`~training.dataset.side_token_keys`). Saved next to a checkpoint,
    they let :func:`transfer_state` move the trained rows onto another export."""
    ids = data.split.graph.ids
    keys: dict[str, np.ndarray] = {t: np.asarray(v, dtype=str) for t, v in ids.items()}
    for t, bag in data.side.items():
        keys[f"side.{t}"] = side_token_keys(bag, ids)
    return keys


def _row_owner(name: str) -> str | None:
    """The key of :func:`node_keys` that indexes the rows of state entry ``name``."""
    parts = name.split(".")
    if parts[:2] == ["embedding", "tables"] and parts[-1] == "weight":
        return parts[2]
    if len(parts) == 2 and parts[0] == "embedding" and parts[1].startswith("trained_"):
        return parts[1].removeprefix("trained_")
    if parts[:2] == ["embedding", "projections"] and parts[-2:] == ["bag", "weight"]:
        return f"side.{parts[2]}"
    return None


def transfer_state(
    state: dict[str, Tensor],
    old_keys: dict[str, np.ndarray],
    new_keys: dict[str, np.ndarray],
) -> dict[str, Tensor]:
    """A trained DP-GCN state dict re-indexed from the export it was trained on
    (``old_keys``, :func:`node_keys`) to another export of the same graph (``new_keys``),
    e.g. one with items created after training.

    Rows are matched by id: ID vectors, "trained" flags and side-token vectors of known nodes
    and tokens are copied; new nodes get a zero ID row and ``trained = False`` (so the model
    uses the unknown vector plus their side information), new tokens a zero vector. The other
    weights do not depend on the node counts and are copied as they are. Load the result into
    a model built on the new export (``build_model(config.model.name, new_data, config)``) and call
    ``encode()`` in eval mode: the new nodes' vectors come from their features and neighbours."""
    out: dict[str, Tensor] = {}
    for name, value in state.items():
        owner = _row_owner(name)
        if owner is None or owner not in new_keys:
            out[name] = value
            continue
        new = np.asarray(new_keys[owner], dtype=str)
        old = np.asarray(old_keys.get(owner, np.zeros(0, str)), dtype=str)
        rows = max(len(new), 1) if not owner.startswith("side.") else len(new)
        if len(old) > value.shape[0]:
            raise ValueError(f"{name} has {value.shape[0]} rows for {len(old)} {owner} keys")
        position = {k: r for r, k in enumerate(old.tolist())}
        src = torch.tensor([position.get(k, -1) for k in new.tolist()], dtype=torch.long)
        moved = value.new_zeros((rows, *value.shape[1:]))
        known = (src >= 0).nonzero().flatten()
        if len(known):
            moved[known] = value[src[known]]
        out[name] = moved
    return out


def search_space(trial: optuna.Trial) -> dict[str, object]:
    """TrainConfig changes of one tuning trial for DP-GCN (and its variants D-GCN, DP-GCN w/o
    DDPG): the common ranges (learning rate, weight decay, embedding size, layers per node type
    1-3, negatives per positive; dropout 0 to 0.5 only with 2 layers or more, as
    :class:`HeteroGCN` applies it between layers) and DP-GCN's own settings: the cold-start
    simulation's share (0 to 0.7), the relation mean (``"type"`` or ``"node"``), the side
    path's learning-rate multiplier (1 to 10, log-scaled) and ID dropout (0 to 0.5)."""
    space = suggest_training(trial, max_layers=3, dropout=False)
    if space["model.num_layers"] >= 2:  # type: ignore[operator]
        space["model.dropout"] = trial.suggest_float("model.dropout", 0.0, 0.5)
    space["model.dpgcn.cold_simulation"] = trial.suggest_float(
        "model.dpgcn.cold_simulation", 0.0, 0.7
    )
    space["model.dpgcn.relation_mean"] = trial.suggest_categorical(
        "model.dpgcn.relation_mean", ["type", "node"]
    )
    space["model.dpgcn.side_scale"] = trial.suggest_float(
        "model.dpgcn.side_scale", 1.0, 10.0, log=True
    )
    space["model.dpgcn.id_dropout"] = trial.suggest_float("model.dpgcn.id_dropout", 0.0, 0.5)
    return space
