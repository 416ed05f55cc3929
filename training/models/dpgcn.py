"""DP-GCN: heterogeneous GCN + static-feature fusion + MLP output (+ DDPG decision layer)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from training.data import ITEM, QUERY, USER
from training.dataset import GraphData, message_passing_edges, side_token_keys
from training.models.base import DotEncoding, DotProductModel, rows, suggest_training
from training.models.feature_fusion import FeatureFusion
from training.models.hetero_gcn import HeteroGCN
from training.models.node_embedding import NodeEmbedding
from training.models.score_head import ScoreHead
from training.sparse import RelationStack

if TYPE_CHECKING:
    import optuna


class DPGCN(DotProductModel):
    r"""DP-GCN (paper §3.3): a multi-level fusion of heterogeneous graph convolutions, static
    user features and a DDPG decision layer.

    1. :class:`~training.models.node_embedding.NodeEmbedding` gives every user, item, query,
       term and category an initial vector :math:`\mathbf{x}^{(0)}_v \in \mathbb{R}^D`:
       its ID vector plus a learned projection of its side information (an item's category
       path, terms and price bucket; a query's terms — a user's static features are fused in
       step 3). Users, items
       and queries without training interactions use a learned "unknown" vector instead of
       their untrained ID vector, and ID dropout trains that path, so the model scores items
       and users it has not seen in training (``inductive``).
    2. :class:`~training.models.hetero_gcn.HeteroGCN` propagates them along the typed relations
       (user–item interactions, user–query searches, query→item, query/item→term,
       item→category, and their reverses): :math:`\mathbf{h}_v`.
    3. :class:`~training.models.feature_fusion.FeatureFusion` fuses the user's static features:
       :math:`\mathbf{f}_u = \mathbf{h}_u + \mathrm{MLP}([\mathbf{h}_u \| \mathbf{s}_u])`
       (skipped in the D-GCN ablation, :math:`\mathbf{f}_u = \mathbf{h}_u`).
    4. :class:`~training.models.score_head.ScoreHead` is the output layer (eq. 6):

       .. math::
           \hat y_{ui} = \sigma\big(\langle \mathbf{w} \odot \mathbf{f}_u,
           \mathbf{W}_I\mathbf{h}_i + \mathbf{b}_I\rangle + b\big),

       trained with binary cross-entropy over positives and sampled negatives (eq. 7).
    5. The DDPG decision layer (:class:`training.policy.DDPGPolicy`) is trained afterwards on
       the frozen vectors: its action :math:`\mathbf{a}` moves the user vector,
       :math:`\mathbf{u}' = \mathbf{u} + \alpha s \mathbf{a}`, re-weighting every item score by
       :math:`\alpha s \langle \mathbf{a}, \mathbf{i} \rangle` (``has_policy``).

    Args:
        data (GraphData): Training graph and side tensors.
        dim (int): Embedding dimension :math:`D`.
        num_layers (int): Graph convolution layers.
        hidden (list[int]): Hidden sizes of the fusion MLP.
        dropout (float, optional): Dropout. (default: :obj:`0.0`)
        use_fusion (bool, optional): Fuse static user features. (default: :obj:`True`)
        use_policy (bool, optional): Train a DDPG decision layer. (default: :obj:`True`)
        pretrained (dict[str, Tensor], optional): Initial vectors per node type (e.g. Term).
        use_side_features (bool, optional): Add the projection of side information to the
            input vectors. (default: :obj:`True`)
        id_dropout (float, optional): Probability of replacing a node's ID vector by its
            type's unknown vector at each training step. (default: :obj:`0.1`)
        light (bool, optional): Propagation only in :class:`HeteroGCN` (no per-type matrix,
            LayerNorm or ReLU; ``HeteroGCN(light=True)``). (default: :obj:`False`)
        norm (str, optional): Per-relation normalisation, ``"mean"`` or ``"sym"``
            (:meth:`RelationStack.build`; mini-batches match the full graph only for
            ``"mean"``). (default: :obj:`"mean"`)
        transform (bool, optional): The score head's learned readout and item/query maps
            (else the plain inner product of fused user and item vectors).
            (default: :obj:`True`)
        reg_weight (float, optional): Weight of the L2 penalty on the training pairs' input
            (layer-0) vectors, :meth:`penalty`, as LightGCN's ``reg_weight``.
            (default: :obj:`0.0`)
        fusion_mode (str, optional): ``"concat"`` or ``"gated"`` (:class:`FeatureFusion`).
            (default: :obj:`"concat"`)

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
        hidden: list[int],
        dropout: float = 0.0,
        use_fusion: bool = True,
        use_policy: bool = True,
        pretrained: dict[str, Tensor] | None = None,
        use_side_features: bool = True,
        id_dropout: float = 0.1,
        light: bool = False,
        norm: str = "mean",
        transform: bool = True,
        reg_weight: float = 0.0,
        fusion_mode: str = "concat",
    ) -> None:
        super().__init__(data)
        self.reg_weight = reg_weight
        self._ego: dict[str, Tensor] | None = None
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
            # a user's static features enter once, through FeatureFusion (step 3): added at
            # the input too, they pulled users of one demographic together and blurred the
            # preference segments (tests/unit/test_segments_recovery.py)
            dense=None,
            id_dropout=id_dropout,
        )
        node_types = list(self.embedding.num_nodes)
        outputs = [t for t in (USER, ITEM, QUERY) if t in node_types]
        self.norm = norm
        self.stack = RelationStack.build(
            message_passing_edges(data), num_nodes, node_types, head_types=outputs, norm=norm
        )
        self.gcn = HeteroGCN(
            node_types,
            [et for rels in self.stack.relations.values() for et in rels],
            dim,
            num_layers,
            dropout,
            output_types=outputs,
            light=light,
            norm=norm,
        )
        self.fusion = (
            FeatureFusion(
                dim,
                data.user_feature_dim,
                hidden,
                dropout,
                mode=fusion_mode,
            )
            if use_fusion
            else None
        )
        self.head = ScoreHead(dim, with_query=data.n_queries > 0, transform=transform)
        self.reset_parameters()

    def use_graph(self, data: GraphData) -> None:
        self.stack = RelationStack.build(
            message_passing_edges(data),
            self._num_nodes,
            self.stack.node_types,
            head_types=list(self.stack.head_types),
            norm=self.norm,
        )
        self.user_x = data.user_x

    def reset_parameters(self) -> None:
        self.embedding.reset_parameters()
        self.gcn.reset_parameters()
        if self.fusion is not None:
            self.fusion.reset_parameters()
        self.head.reset_parameters()

    def encode(self) -> DotEncoding:
        ego = self.embedding()
        self._ego = ego if self.training and self.reg_weight > 0 else None
        h = self.gcn(ego, self.stack)
        user, item = h[USER], h[ITEM]
        # (tables hold at least one row; slice only when a type is empty, since the backward of
        # a slice allocates a zero-filled gradient of the whole table)
        if len(user) != self.n_users:
            user = user[: self.n_users]
        if len(item) != self.n_items:
            item = item[: self.n_items]
        if self.fusion is not None:
            user = self.fusion(user, self.user_x)
        u, i, q = self.head(user, item, h.get(QUERY))
        return DotEncoding(user=u, item=i, query=q, bias=self.head.bias)

    def penalty(self, enc: DotEncoding, users: Tensor, items: Tensor) -> Tensor | None:
        r"""``reg_weight`` times the mean over the scored pairs of
        :math:`(\lVert \mathbf{x}^{(0)}_u \rVert^2 + \lVert \mathbf{x}^{(0)}_i \rVert^2) / 2`, the
        input vectors of the last training-mode :meth:`encode` (``None`` in eval mode or
        with ``reg_weight = 0``)."""
        if self._ego is None:
            return None
        u = rows(self._ego[USER], users).pow(2).sum(-1)
        i = rows(self._ego[ITEM], items).pow(2).sum(-1)
        return self.reg_weight * (u + i).mean() / 2


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
    a model built on the new export (``build_model(config.model, new_data, config)``) and call
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
    DDPG): learning rate, weight decay, embedding size, layers per node type (1-3), dropout and
    negatives per positive. ID dropout (``DPGCN(id_dropout=…)``) is not a TrainConfig field yet,
    so it stays at its default."""
    return suggest_training(trial, max_layers=3)
