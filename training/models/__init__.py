"""Model registry: name → :class:`ModelSpec` (builder, display name, servable flag, the
module of its search space). Every model here is trained and evaluated by the same harness
(:func:`training.train.fit`, :func:`training.evaluate.evaluate`) on the same splits.

``lightgcn_pyg`` is a library-made reference: PyG's own ``LightGCN`` module, beside the
project's ``lightgcn`` (same arithmetic, a unit test checks it).

Importing this package is cheap (no torch: each builder imports its model's module when it
is called), so the CLI reads the model names from :data:`MODEL_SPECS` too."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from training.errors import ConfigError

if TYPE_CHECKING:
    from training.config import TrainConfig
    from training.dataset import GraphData
    from training.models.base import RecModel

ModelBuilder = Callable[["GraphData", "TrainConfig"], "RecModel"]


def _dpgcn(use_fusion: bool, use_policy: bool) -> ModelBuilder:
    def build(data: GraphData, config: TrainConfig) -> RecModel:
        from training.models.dpgcn import DPGCN

        pretrained = None
        if config.model.word2vec_terms:
            from training.word2vec import term_vectors

            pretrained = term_vectors(data, config.model.dim, config.seed)
        return DPGCN(
            data,
            dim=config.model.dim,
            num_layers=config.model.num_layers,
            dropout=config.model.dropout,
            use_fusion=use_fusion,
            use_policy=use_policy,
            pretrained=pretrained,
            cold_simulation=config.model.cold_simulation,
        )

    return build


def _gcn(data: GraphData, config: TrainConfig) -> RecModel:
    from training.models.gcn import GCN

    return GCN(data, config.model.dim, config.model.num_layers, config.model.dropout)


def _lightgcn(data: GraphData, config: TrainConfig) -> RecModel:
    from training.models.lightgcn import LightGCN

    return LightGCN(data, config.model.dim, config.model.num_layers)


def _lightgcn_pyg(data: GraphData, config: TrainConfig) -> RecModel:
    from training.models.pyg_lightgcn import PyGLightGCN

    return PyGLightGCN(data, config.model.dim, config.model.num_layers)


def _embedding_mlp(data: GraphData, config: TrainConfig) -> RecModel:
    from training.models.embedding_mlp import EmbeddingMLP

    return EmbeddingMLP(data, config.model.dim, list(config.model.mlp_hidden), config.model.dropout)


def _wide_deep(data: GraphData, config: TrainConfig) -> RecModel:
    from training.models.wide_deep import WideDeep

    return WideDeep(data, config.model.dim, list(config.model.mlp_hidden), config.model.dropout)


def _pnn(data: GraphData, config: TrainConfig) -> RecModel:
    from training.models.pnn import PNN

    return PNN(data, config.model.dim, list(config.model.mlp_hidden), config.model.dropout)


def _din(data: GraphData, config: TrainConfig) -> RecModel:
    from training.models.din import DIN

    return DIN(data, config.model.dim, list(config.model.mlp_hidden), config.model.dropout)


def _popularity(data: GraphData, config: TrainConfig) -> RecModel:
    from training.models.popularity import Popularity

    return Popularity(data)


def _itemknn(data: GraphData, config: TrainConfig) -> RecModel:
    from training.models.item_knn import ItemKNN

    return ItemKNN(data)


def _query_frequency(data: GraphData, config: TrainConfig) -> RecModel:
    from training.models.query_frequency import QueryFrequency

    return QueryFrequency(data)


@dataclass(frozen=True)
class ModelSpec:
    """One model of the harness: how it is built, how reports name it, whether a trained one
    can be served from embeddings (``train_from_export`` writes a model dir), and the module
    that declares its ``search_space(trial)`` for ``dpgcn tune`` (None: nothing to tune)."""

    builder: ModelBuilder
    display: str
    servable: bool = False
    module: str | None = None


_DPGCN_MODULE = "training.models.dpgcn"

#: Every model, in the order reports list them: the one table the others below are read from.
MODEL_SPECS: dict[str, ModelSpec] = {
    "popularity": ModelSpec(_popularity, "Popularity"),
    "itemknn": ModelSpec(_itemknn, "ItemKNN"),
    "query_frequency": ModelSpec(_query_frequency, "Query frequency"),
    "embedding_mlp": ModelSpec(
        _embedding_mlp, "Embedding&MLP", module="training.models.embedding_mlp"
    ),
    "wide_deep": ModelSpec(_wide_deep, "Wide&Deep", module="training.models.wide_deep"),
    "pnn": ModelSpec(_pnn, "PNN", module="training.models.pnn"),
    "din": ModelSpec(_din, "DIN", module="training.models.din"),
    "lightgcn": ModelSpec(_lightgcn, "LightGCN", True, "training.models.lightgcn"),
    "lightgcn_pyg": ModelSpec(
        _lightgcn_pyg, "LightGCN (PyG)", True, "training.models.pyg_lightgcn"
    ),
    "gcn": ModelSpec(_gcn, "GCN", True, "training.models.gcn"),
    "dgcn": ModelSpec(_dpgcn(use_fusion=False, use_policy=True), "D-GCN", True, _DPGCN_MODULE),
    "dpgcn_no_ddpg": ModelSpec(
        _dpgcn(use_fusion=True, use_policy=False), "DP-GCN w/o DDPG", True, _DPGCN_MODULE
    ),
    "dpgcn": ModelSpec(_dpgcn(use_fusion=True, use_policy=True), "DP-GCN", True, _DPGCN_MODULE),
}

#: Views of :data:`MODEL_SPECS` for the code that needs one column.
MODEL_REGISTRY: dict[str, ModelBuilder] = {n: s.builder for n, s in MODEL_SPECS.items()}
#: Human-readable names for reports (plus the synthetic data's planted model).
DISPLAY_NAMES: dict[str, str] = {n: s.display for n, s in MODEL_SPECS.items()} | {
    "oracle": "Oracle (planted model)"
}
SERVABLE = tuple(n for n, s in MODEL_SPECS.items() if s.servable)


def build_model(name: str, data: GraphData, config: TrainConfig) -> RecModel:
    try:
        builder = MODEL_REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(MODEL_REGISTRY)}") from None
    return builder(data, config)


__all__ = [
    "DISPLAY_NAMES",
    "MODEL_REGISTRY",
    "MODEL_SPECS",
    "SERVABLE",
    "ModelSpec",
    "build_model",
]
