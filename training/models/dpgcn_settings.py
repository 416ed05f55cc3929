"""DP-GCN's own settings (``TrainConfig.model.dpgcn``), read by the builders of DP-GCN and its
ablations D-GCN and DP-GCN w/o DDPG (:class:`training.models.dpgcn.DPGCN`). Torch-free: the
config module and the registry import it without importing the model."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from training.models.settings import ModelSettings

RelationMean = Literal["type", "node"]

#: Default :attr:`DPGCNSettings.cold_simulation`: off. It costs validation NDCG@10 where every
#: evaluated item is warm; set it (or tune it) where items without interactions must rank among
#: warm ones (docs/model.md, "Cold-start simulation").
COLD_SIMULATION = 0.0


class DPGCNSettings(ModelSettings):
    """DP-GCN's settings (the ``model.dpgcn`` section)."""

    key: ClassVar[str] = "dpgcn"

    #: Initialise term vectors from a skip-gram model trained on the export's own term
    #: co-occurrences (queries' and items' terms); no download.
    word2vec_terms: bool = False
    #: The cold-start simulation (DropoutNet on the graph): the share of the trained items that
    #: lose their ID vector and their interaction edges at each training step, so that the
    #: model learns to score an item without interactions on the warm items' scale (0: off).
    cold_simulation: float = Field(default=COLD_SIMULATION, ge=0.0, lt=1.0)
    #: How the propagation averages the relations into a node (``HeteroGCN(relation_mean=…)``):
    #: ``"type"`` divides by every relation into the node's type (PyG's
    #: ``HeteroConv(aggr="mean")``); ``"node"`` by the relations the node has neighbours under,
    #: so that an item without interactions (category and term edges only) sits on the warm
    #: items' scale (docs/model.md, "Cold items on the warm items' scale").
    relation_mean: RelationMean = "type"
    #: Learning-rate multiplier of the side-information token vectors
    #: (:class:`~training.models.node_embedding.SideProjection`; 1: plain). The cold-item
    #: setting of docs/model.md is 5 with ``relation_mean="node"`` and ``cold_simulation`` 0.5.
    side_scale: float = Field(default=1.0, ge=1.0)
    #: ID dropout: the probability that a trained node's ID vector is replaced by its type's
    #: unknown vector at a training step (``NodeEmbedding(id_dropout=…)``), so that the unknown
    #: vector and the side path learn to stand in for the ID. 0.1 is what DP-GCN always used
    #: before it was a setting, so stored runs without it match.
    id_dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
