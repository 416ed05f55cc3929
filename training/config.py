"""Experiment settings: one frozen :class:`TrainConfig` in sections, saved next to every
checkpoint.

Training never reads environment variables; everything that changes a run is a setting here,
in one of five sections plus the run's ``seed`` and ``device``:

* ``model`` (:class:`ModelConfig`): which model (``model.name``) and its shape;
* ``optim`` (:class:`OptimConfig`): the optimiser, the epochs and how an epoch is batched;
* ``eval`` (:class:`EvalConfig`): the protocol, the split and the metrics;
* ``policy`` (:class:`PolicyConfig`): the DDPG decision layer and its reward table;
* ``serving`` (:class:`ServingConfig`): what the exported model uses when it is served.

Every section is a frozen pydantic model that forbids unknown fields; a bad value raises a
:class:`training.errors.ConfigError` naming the setting's path
(``TrainConfig.optim.lr must be positive, got 0.0``; :mod:`training.config_paths`).

One way to change settings: :meth:`TrainConfig.replace` with dotted paths,
``config.replace({"optim.lr": 1e-3, "model.dim": 32})``. The CLI, ``dpgcn tune`` (a search
space returns those paths, and ``tuned.json`` holds them), ``dpgcn evaluate --tuned``, Celery
messages and the tests all use it.

``to_json()`` / ``from_json()`` round-trip exactly. Settings written before the sections
existed (one flat object: checkpoints, stored runs, ``tuned.json`` files, Celery messages in
flight) are read through :func:`training.config_paths.config_paths`, the one place that knows
the old flat names; :mod:`training.config_paths` also compares two sets of settings
(``settings_differ``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from training.config_paths import config_paths, path_parts, validated
from training.errors import ConfigError
from training.models.dpgcn_settings import DPGCNSettings
from training.splits import PROTOCOLS

#: Reward of one logged user → item interaction, by relationship type (click = 1, purchase = 5,
#: nothing = 0). Types not listed here count as a click.
DEFAULT_REWARDS: tuple[tuple[str, float], ...] = (
    ("VIEWED", 0.5),
    ("CLICKED", 1.0),
    ("RATED", 1.0),
    ("PURCHASED", 5.0),
)

Batching = Literal["auto", "full", "minibatch"]
FanoutPer = Literal["type", "relation"]

#: Values of :attr:`OptimConfig.batching`.
BATCHING: tuple[str, ...] = get_args(Batching)

#: Values of :attr:`OptimConfig.fanout_per`.
FANOUT_PER: tuple[str, ...] = get_args(FanoutPer)

_RANKING_SELECT = ("ndcg", "recall", "hr", "precision", "map")


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class ModelConfig(_Section):
    """Which model is trained, its shape, and each model family's own settings (the ``model``
    section).

    The fields at this level are common: every model of the harness reads them or is shaped by
    them. ``dim``, ``num_layers`` and ``dropout`` are the shape every embedding model has (a
    model without layers or dropout ignores them, and its search space leaves them out);
    ``mlp_hidden`` sizes the MLP of every model that has one; ``query_loss_weight`` weighs the
    query loss of every model that scores queries; ``history_len`` is common although only the
    DIN family reads it, because the data, not the model, keeps each user's last
    ``history_len`` items (``build_graph_data``), for every model alike.

    A model family's own settings are a :class:`~training.models.settings.ModelSettings`
    section here, declared next to the model and named by its ``ModelSpec.settings``:
    ``model.dpgcn`` (:class:`~training.models.dpgcn_settings.DPGCNSettings`), read by DP-GCN,
    D-GCN and DP-GCN w/o DDPG only."""

    #: Registry name of the model (see ``training.models.MODEL_SPECS``).
    name: str = Field(default="dpgcn", min_length=1)
    #: Embedding dimension D (paper: 128).
    dim: int = Field(default=64, gt=0)
    #: Graph convolution layers per node type.
    num_layers: int = Field(default=2, ge=0)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    #: Hidden sizes of the MLPs (fusion layer, baselines' deep parts).
    mlp_hidden: tuple[int, ...] = (64,)
    #: Behaviour sequence length of the DIN-style baselines (the data keeps each user's
    #: last ``history_len`` items for every model).
    history_len: int = Field(default=20, ge=0)
    #: Weight of the user → query BCE loss (query suggestion) next to the user → item loss,
    #: for every model that scores queries.
    query_loss_weight: float = Field(default=0.5, ge=0.0)
    #: DP-GCN's own settings (DP-GCN, D-GCN, DP-GCN w/o DDPG).
    dpgcn: DPGCNSettings = Field(default_factory=DPGCNSettings)


class OptimConfig(_Section):
    """How the model is optimised (the ``optim`` section)."""

    #: Epoch cap. High enough that no model's best epoch sits at it on the published datasets
    #: (the reports flag a run whose best epoch is the cap: "stopped at cap").
    epochs: int = Field(default=200, gt=0)
    lr: float = Field(default=5e-3, gt=0.0)
    weight_decay: float = Field(default=0.0, ge=0.0)
    batch_size: int = Field(default=2048, gt=0)
    #: Sampled negative items per positive (paper eq. 7, the set S⁻).
    num_negatives: int = Field(default=2, gt=0)
    #: Stop when the validation ``eval.select_metric`` has not improved for this many epochs
    #: (0 = never stop early).
    patience: int = Field(default=10, ge=0)
    #: How an epoch visits the graph: ``"full"`` (every step propagates over the whole
    #: training graph, :func:`training.train.train_epoch`), ``"minibatch"`` (each step sees the
    #: neighbourhood PyG's ``LinkNeighborLoader`` samples around a batch of interactions,
    #: :mod:`training.minibatch`; DP-GCN models only) or ``"auto"``: mini-batch from
    #: ``minibatch_min_edges`` training interactions on, for models that support it.
    batching: Batching = "auto"
    #: Training interactions from which ``batching="auto"`` picks mini-batches. A full-batch
    #: epoch costs (interactions / batch_size) whole-graph propagations, so its time grows with
    #: the square of the graph (docs/benchmarks-training.md).
    minibatch_min_edges: int = Field(default=1_000_000, ge=0)
    #: Sampled neighbours per relation at each hop of a mini-batch (``-1``: all), one value per
    #: graph layer; the last value repeats for layers beyond the tuple.
    fanout: tuple[int, ...] = (10, 5)
    #: What a hop's ``fanout`` counts: ``"type"`` (a node draws about k neighbours in all,
    #: split over the relations that reach its type) or ``"relation"`` (k per relation).
    fanout_per: FanoutPer = "type"
    #: Automatic mixed precision; only ever used on CUDA.
    mixed_precision: bool = True
    #: Deterministic kernels (``training.device.deterministic``): two runs of one seed agree.
    deterministic: bool = True
    #: Seconds between training checkpoints when a checkpoint directory is given (written at
    #: the end of the first epoch after the interval has passed; 0: after every epoch).
    checkpoint_interval_s: float = Field(default=60.0, ge=0.0)
    #: Data-parallel ranks of ``train_from_export`` (``training.distributed``; one per GPU).
    processes: int = Field(default=1, gt=0)
    #: Time budget of the epoch loop in seconds (0 = no limit): an epoch starts only if the
    #: seconds already spent in the loop plus the longest epoch so far (training and
    #: validation) fit in it; the first epoch always runs, and the best validated epoch is kept
    #: as with early stopping. Time before a checkpoint resume counts. The DDPG stage and
    #: what follows it are not bounded (docs/training.md, "A time budget").
    max_train_seconds: float = Field(default=0.0, ge=0.0)

    @field_validator("fanout")
    @classmethod
    def _fanout(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(k == 0 or k < -1 for k in value):
            raise ValueError("must hold positive neighbour counts or -1 (all) per hop")
        return value


class EvalConfig(_Section):
    """How validation and test interactions are held out and scored (the ``eval`` section)."""

    #: How validation and test interactions are held out (``training.splits.PROTOCOLS``).
    protocol: str = "leave-last-out"
    #: Train / validation / test shares of each user's interactions (ratio protocols).
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    #: Share of the items held out for test (and as many for validation) by ``cold-item``.
    cold_share: float = Field(default=0.1, gt=0.0, lt=0.5)
    #: Users with fewer interactions keep all of them in training (no val/test item).
    min_interactions: int = Field(default=3, ge=3)
    #: Validation metric that picks the best epoch (and the DDPG α): a full-ranking metric
    #: (``ndcg@K``, ``recall@K``, ``hr@K``, ``precision@K``, ``map@K``, ``mrr``) for
    #: recommendation, ``auc`` (held-out item vs ``click_negatives`` samples) for click
    #: prediction.
    select_metric: str = "ndcg@10"
    #: Cut-offs of the top-K metrics.
    top_k: tuple[int, ...] = (5, 10, 20)
    #: At most this many test users are ranked against all items, and at most this many
    #: users' held-out searches against all queries (each sampled with the seed).
    max_users: int = Field(default=5000, gt=0)
    #: Sampled negatives per positive in the click-prediction sets (DIN protocol).
    click_negatives: int = Field(default=4, gt=0)
    #: Candidate-set size (1 positive + n − 1 sampled negatives) of the sampled ranking protocol.
    sampled_candidates: int = Field(default=100, ge=2)

    @field_validator("protocol")
    @classmethod
    def _protocol(cls, value: str) -> str:
        if value not in PROTOCOLS:
            raise ValueError(f"is not a known protocol ({', '.join(PROTOCOLS)})")
        return value

    @field_validator("ratios")
    @classmethod
    def _ratios(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if min(value) <= 0 or abs(sum(value) - 1) > 1e-6:
            raise ValueError("must be 3 positive shares summing to 1")
        return value

    @field_validator("select_metric")
    @classmethod
    def _select_metric(cls, value: str) -> str:
        if value in ("auc", "mrr"):
            return value
        metric, _, k = value.partition("@")
        if metric in _RANKING_SELECT and k.isdigit() and int(k) > 0:
            return value
        raise ValueError(
            f"is not auc, mrr or <metric>@K with metric one of {', '.join(_RANKING_SELECT)}"
        )

    @field_validator("top_k")
    @classmethod
    def _top_k(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or min(value) <= 0:
            raise ValueError("must hold positive cut-offs")
        return value


class PolicyConfig(_Section):
    """The DDPG decision layer (``training/policy.py``) and the rewards of its offline
    environment (the ``policy`` section)."""

    #: Hidden layer sizes of the actor and critic MLPs.
    actor_hidden: tuple[int, ...] = (128, 64)
    critic_hidden: tuple[int, ...] = (128, 64)
    actor_lr: float = Field(default=1e-4, gt=0.0)
    critic_lr: float = Field(default=1e-3, gt=0.0)
    #: Discount factor γ of the critic target (paper eq. 4).
    gamma: float = 0.9
    #: Soft update rate τ of the target networks: θ' ← τθ + (1 − τ)θ'.
    tau: float = Field(default=0.01, gt=0.0, le=1.0)
    buffer_size: int = Field(default=50_000, gt=0)
    batch_size: int = Field(default=256, gt=0)
    #: Environment steps (each a batch of ``env_batch`` users) in offline training.
    steps: int = Field(default=150, ge=0)
    env_batch: int = Field(default=256, gt=0)
    updates_per_step: int = 1
    #: Exploration noise: "gaussian" or "ou" (Ornstein–Uhlenbeck).
    noise: Literal["gaussian", "ou"] = "gaussian"
    noise_sigma: float = 0.2
    #: Number of most recent items averaged into the state.
    state_history: int = 5
    #: Items recommended per environment step; reward is their rank-discounted feedback.
    slate_size: int = 5
    #: Random items added to the logged future items to form an environment step's candidates.
    env_candidates: int = 50
    #: How many logged future items count as relevant for an environment step.
    env_window: int = 5
    #: Strength α of the action: user vector u' = u + α · scale · action. The value used is
    #: chosen on the validation split from this grid (0 keeps the supervised model unchanged).
    alpha_grid: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5, 1.0)
    #: Reward per interaction type (offline environment of the DDPG layer).
    rewards: tuple[tuple[str, float], ...] = DEFAULT_REWARDS

    def reward_of(self) -> dict[str, float]:
        """The reward table as a dict (relationship type → reward)."""
        return dict(self.rewards)


class ServingConfig(_Section):
    """What a served model uses beside its vectors (the ``serving`` section)."""

    #: Neighbours averaged by the static-feature k-NN cold-start rule.
    cold_start_k: int = Field(default=10, gt=0)


#: The sections of :class:`TrainConfig`, by attribute name.
SECTIONS: dict[str, type[_Section]] = {
    "model": ModelConfig,
    "optim": OptimConfig,
    "eval": EvalConfig,
    "policy": PolicyConfig,
    "serving": ServingConfig,
}


class TrainConfig(BaseModel):
    """Everything one training run depends on.

    The defaults train the DP-GCN model on a demo graph (~2,000 users, 500 items, ~60k edges)
    in well under two minutes on two CPU cores.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    #: Seed of the split, the initialisation, the negatives and the evaluated users.
    seed: int = 0
    #: "auto" (CUDA when available), "cpu", "cuda" or "cuda:N".
    device: str = "auto"
    model: ModelConfig = Field(default_factory=ModelConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    serving: ServingConfig = Field(default_factory=ServingConfig)

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if value not in ("auto", "cpu") and not value.startswith("cuda"):
            raise ValueError("is not auto, cpu, cuda or cuda:N")
        return value

    def fanout_per_layer(self) -> list[int]:
        """The sampled neighbours per relation at each of the ``model.num_layers`` hops."""
        fanout = self.optim.fanout
        return [fanout[min(h, len(fanout) - 1)] for h in range(self.model.num_layers)]

    def get(self, path: str) -> Any:
        """The value of one setting by its dotted path (``"optim.lr"``,
        ``"model.dpgcn.cold_simulation"``)."""
        value: Any = self
        for part in path_parts(TrainConfig, path):
            value = getattr(value, part)
        return value

    def replace(self, changes: Mapping[str, Any]) -> TrainConfig:
        """A copy with the settings at the dotted paths of ``changes`` changed, validated:
        ``config.replace({"optim.lr": 1e-3, "seed": 2})``. A section's path
        (``"policy"``, ``"model.dpgcn"``) takes a whole section (its model or a mapping;
        missing fields get their defaults)."""
        data = self.model_dump()
        for path, value in changes.items():
            *parents, last = path_parts(TrainConfig, path)
            target = data
            for part in parents:
                target = target[part]
            target[last] = value.model_dump() if isinstance(value, BaseModel) else value
        return validated(TrainConfig, data)

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready nested dicts (sections as objects, tuples as lists)."""
        return self.model_dump(mode="json")

    def to_paths(self) -> dict[str, Any]:
        """The settings as ``{dotted path: JSON value}`` (what stored runs are compared by)."""
        return config_paths(TrainConfig, self.to_dict())

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Settings from their JSON form: sections as objects (missing ones and missing fields
        get their defaults), dotted paths, or the flat form written before the sections
        (:func:`training.config_paths.config_paths`)."""
        return TrainConfig().replace(config_paths(TrainConfig, data))

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"TrainConfig JSON is invalid: {e}") from e
        if not isinstance(data, dict):
            raise ConfigError("TrainConfig JSON must be an object")
        return cls.from_dict(data)
