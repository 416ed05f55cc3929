"""Model registry: name → :class:`ModelSpec` (builder, display name, servable flag, the
module of its search space, the class of its own settings). Every model here is trained and
evaluated by the same harness (:func:`training.train.fit`, :func:`training.evaluate.evaluate`)
on the same splits.

``lightgcn_pyg`` is a library-made reference: PyG's own ``LightGCN`` module, beside the
project's ``lightgcn`` (same arithmetic, a unit test checks it).

Importing this package is cheap (no torch: each builder imports its model's module when it
is called), so the CLI reads the model names from :data:`MODEL_SPECS` too."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from training.errors import ConfigError
from training.models.dpgcn_settings import DPGCNSettings
from training.models.settings import ModelSettings

if TYPE_CHECKING:
    from training.config import TrainConfig
    from training.dataset import GraphData
    from training.models.base import RecModel

ModelBuilder = Callable[["GraphData", "TrainConfig"], "RecModel"]


def _dpgcn(use_fusion: bool, use_policy: bool) -> ModelBuilder:
    def build(data: GraphData, config: TrainConfig) -> RecModel:
        from training.models.dpgcn import DPGCN

        own = config.model.dpgcn
        pretrained = None
        if own.word2vec_terms:
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
            cold_simulation=own.cold_simulation,
            relation_mean=own.relation_mean,
            side_scale=own.side_scale,
            id_dropout=own.id_dropout,
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


def _popularity_category(data: GraphData, config: TrainConfig) -> RecModel:
    from training.models.popularity import CategoryPopularity

    return CategoryPopularity(data)


def _itemknn(data: GraphData, config: TrainConfig) -> RecModel:
    from training.models.item_knn import ItemKNN

    return ItemKNN(data)


def _query_frequency(data: GraphData, config: TrainConfig) -> RecModel:
    from training.models.query_frequency import QueryFrequency

    return QueryFrequency(data)


@dataclass(frozen=True)
class ModelSpec:
    """One model of the harness: how it is built, how reports name it, whether a trained one
    can be served from embeddings (``train_from_export`` writes a model dir), the module
    that declares its ``search_space(trial)`` for ``dpgcn tune`` (None: nothing to tune), and
    the class of its own settings (``TrainConfig.model.<settings.key>``; None: it reads the
    common settings of ``TrainConfig.model`` only). A search space changes the common
    settings and its model's own, no other model's."""

    builder: ModelBuilder
    display: str
    servable: bool = False
    module: str | None = None
    settings: type[ModelSettings] | None = None


_DPGCN_MODULE = "training.models.dpgcn"

#: Every model, in the order reports list them: the one table the others below are read from.
MODEL_SPECS: dict[str, ModelSpec] = {
    "popularity": ModelSpec(_popularity, "Popularity"),
    "itemknn": ModelSpec(_itemknn, "ItemKNN"),
    "popularity_category": ModelSpec(_popularity_category, "Popularity (category back-off)"),
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
    "dgcn": ModelSpec(
        _dpgcn(use_fusion=False, use_policy=True), "D-GCN", True, _DPGCN_MODULE, DPGCNSettings
    ),
    "dpgcn_no_ddpg": ModelSpec(
        _dpgcn(use_fusion=True, use_policy=False),
        "DP-GCN w/o DDPG",
        True,
        _DPGCN_MODULE,
        DPGCNSettings,
    ),
    "dpgcn": ModelSpec(
        _dpgcn(use_fusion=True, use_policy=True), "DP-GCN", True, _DPGCN_MODULE, DPGCNSettings
    ),
}

#: Views of :data:`MODEL_SPECS` for the code that needs one column.
MODEL_REGISTRY: dict[str, ModelBuilder] = {n: s.builder for n, s in MODEL_SPECS.items()}
#: Human-readable names for reports (plus the synthetic data's planted model).
DISPLAY_NAMES: dict[str, str] = {n: s.display for n, s in MODEL_SPECS.items()} | {
    "oracle": "Oracle (planted model)"
}
SERVABLE = tuple(n for n, s in MODEL_SPECS.items() if s.servable)


#: The settings classes of the registry's models (each once).
MODEL_SETTINGS: tuple[type[ModelSettings], ...] = tuple(
    dict.fromkeys(s.settings for s in MODEL_SPECS.values() if s.settings is not None)
)


def others_settings(name: str | None) -> tuple[str, ...]:
    """Path prefixes (``"model.dpgcn."``) of the model settings that model ``name`` does not
    read (every model's for an unknown name or None: nothing is left out then, see
    :func:`training.report.same_settings`)."""
    spec = MODEL_SPECS.get(name or "")
    if spec is None:
        return ()
    return tuple(f"{s.path()}." for s in MODEL_SETTINGS if s is not spec.settings)


def check_trained_settings(name: str, stored: Mapping[str, Any], source: object) -> None:
    """Refuse weights of a DP-GCN model whose stored settings cannot say how it was built.

    Settings stored in the flat form (before ``TrainConfig`` had sections, code up to
    ``8c5a6d1``) with a cold-start share above 0 were trained with a relation mean and
    side-path scale that depended on the code's version, not on the settings: ``"type"`` /
    ``1.0`` before ``48f604d``, ``"node"`` / ``5.0`` from ``48f604d`` at any share, and from
    ``d471da9`` at a share of 0.25 or more. The weights cannot tell them apart either: the
    scale is a constant of :class:`~training.models.node_embedding.SideProjection`, not a
    parameter or buffer, so the state dict has the same keys and shapes under both (a unit
    test checks it). Loading them would score with a side path 5 times too large or small.

    Raises:
        ConfigError: naming ``source`` (the file), the share and what to do.
    """
    spec = MODEL_SPECS.get(name)
    share = stored.get("cold_simulation")
    if spec is None or spec.settings is not DPGCNSettings or not isinstance(share, int | float):
        return
    if share > 0:
        raise ConfigError(
            f"{source}: DP-GCN weights stored with the flat settings of before TrainConfig had "
            f"sections and cold_simulation {share}: the code of that time chose "
            "model.dpgcn.relation_mean and model.dpgcn.side_scale by its version, which "
            "neither these settings nor the weights record; retrain the model"
        )


def build_model(name: str, data: GraphData, config: TrainConfig) -> RecModel:
    try:
        builder = MODEL_REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(MODEL_REGISTRY)}") from None
    return builder(data, config)


__all__ = [
    "DISPLAY_NAMES",
    "MODEL_REGISTRY",
    "MODEL_SETTINGS",
    "MODEL_SPECS",
    "SERVABLE",
    "ModelSpec",
    "build_model",
    "check_trained_settings",
    "others_settings",
]
