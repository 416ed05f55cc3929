"""Model registry: name → builder. Every model here is trained and evaluated by the same harness
(:func:`training.train.fit`, :func:`training.evaluate.evaluate`) on the same splits.

``lightgcn_pyg`` is a library-made reference: PyG's own ``LightGCN`` module, beside the
project's ``lightgcn`` (same arithmetic, a unit test checks it)."""

from __future__ import annotations

from collections.abc import Callable

from training.config import TrainConfig
from training.dataset import GraphData
from training.errors import ConfigError
from training.models.base import RecModel

ModelBuilder = Callable[[GraphData, TrainConfig], RecModel]


def _dpgcn(use_fusion: bool, use_policy: bool) -> ModelBuilder:
    def build(data: GraphData, config: TrainConfig) -> RecModel:
        from training.models.dpgcn import DPGCN

        pretrained = None
        if config.word2vec_terms:
            from training.word2vec import term_vectors

            pretrained = term_vectors(data, config.dim, config.seed)
        return DPGCN(
            data,
            dim=config.dim,
            num_layers=config.num_layers,
            hidden=list(config.mlp_hidden),
            dropout=config.dropout,
            use_fusion=use_fusion,
            use_policy=use_policy,
            pretrained=pretrained,
        )

    return build


def _gcn(data: GraphData, config: TrainConfig) -> RecModel:
    from training.models.gcn import GCN

    return GCN(data, config.dim, config.num_layers, config.dropout)


def _lightgcn(data: GraphData, config: TrainConfig) -> RecModel:
    from training.models.lightgcn import LightGCN

    return LightGCN(data, config.dim, config.num_layers)


def _lightgcn_pyg(data: GraphData, config: TrainConfig) -> RecModel:
    from training.models.pyg_lightgcn import PyGLightGCN

    return PyGLightGCN(data, config.dim, config.num_layers)


def _embedding_mlp(data: GraphData, config: TrainConfig) -> RecModel:
    from training.models.embedding_mlp import EmbeddingMLP

    return EmbeddingMLP(data, config.dim, list(config.mlp_hidden), config.dropout)


def _wide_deep(data: GraphData, config: TrainConfig) -> RecModel:
    from training.models.wide_deep import WideDeep

    return WideDeep(data, config.dim, list(config.mlp_hidden), config.dropout)


def _pnn(data: GraphData, config: TrainConfig) -> RecModel:
    from training.models.pnn import PNN

    return PNN(data, config.dim, list(config.mlp_hidden), config.dropout)


def _din(data: GraphData, config: TrainConfig) -> RecModel:
    from training.models.din import DIN

    return DIN(data, config.dim, list(config.mlp_hidden), config.dropout)


def _popularity(data: GraphData, config: TrainConfig) -> RecModel:
    from training.models.popularity import Popularity

    return Popularity(data)


def _itemknn(data: GraphData, config: TrainConfig) -> RecModel:
    from training.models.item_knn import ItemKNN

    return ItemKNN(data)


def _query_frequency(data: GraphData, config: TrainConfig) -> RecModel:
    from training.models.query_frequency import QueryFrequency

    return QueryFrequency(data)


#: Registry of every model, in the order reports list them.
MODEL_REGISTRY: dict[str, ModelBuilder] = {
    "popularity": _popularity,
    "itemknn": _itemknn,
    "query_frequency": _query_frequency,
    "embedding_mlp": _embedding_mlp,
    "wide_deep": _wide_deep,
    "pnn": _pnn,
    "din": _din,
    "lightgcn": _lightgcn,
    "lightgcn_pyg": _lightgcn_pyg,
    "gcn": _gcn,
    "dgcn": _dpgcn(use_fusion=False, use_policy=True),
    "dpgcn_no_ddpg": _dpgcn(use_fusion=True, use_policy=False),
    "dpgcn": _dpgcn(use_fusion=True, use_policy=True),
}

#: Human-readable names for reports.
DISPLAY_NAMES: dict[str, str] = {
    "popularity": "Popularity",
    "itemknn": "ItemKNN",
    "query_frequency": "Query frequency",
    "embedding_mlp": "Embedding&MLP",
    "wide_deep": "Wide&Deep",
    "pnn": "PNN",
    "din": "DIN",
    "lightgcn": "LightGCN",
    "lightgcn_pyg": "LightGCN (PyG)",
    "gcn": "GCN",
    "dgcn": "D-GCN",
    "dpgcn_no_ddpg": "DP-GCN w/o DDPG",
    "dpgcn": "DP-GCN",
    "oracle": "Oracle (planted model)",
}

#: Models that can be served from embeddings (``train_from_export`` writes a model dir).
SERVABLE = ("lightgcn", "lightgcn_pyg", "gcn", "dgcn", "dpgcn_no_ddpg", "dpgcn")


def build_model(name: str, data: GraphData, config: TrainConfig) -> RecModel:
    try:
        builder = MODEL_REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(MODEL_REGISTRY)}") from None
    return builder(data, config)


__all__ = ["DISPLAY_NAMES", "MODEL_REGISTRY", "SERVABLE", "RecModel", "build_model"]
