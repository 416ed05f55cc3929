"""Experiment settings: one frozen :class:`TrainConfig`, saved next to every checkpoint.

Training never reads environment variables; everything that changes a run is a field here.
``to_json()`` / ``from_json()`` round-trip exactly (tuples stay tuples, nested
:class:`DDPGConfig` stays a dataclass).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from training.errors import ConfigError
from training.splits import PROTOCOLS

#: Reward of one logged user → item interaction, by relationship type (click = 1, purchase = 5,
#: nothing = 0). Types not listed here count as a click.
DEFAULT_REWARDS: tuple[tuple[str, float], ...] = (
    ("VIEWED", 0.5),
    ("CLICKED", 1.0),
    ("RATED", 1.0),
    ("PURCHASED", 5.0),
)


#: Values of :attr:`TrainConfig.batching`.
BATCHING = ("auto", "full", "minibatch")

#: Values of :attr:`TrainConfig.fanout_per`.
FANOUT_PER = ("type", "relation")

#: Default :attr:`TrainConfig.cold_simulation`: share of the trained items DP-GCN computes as
#: cold items at each training step. Off by default: it costs validation NDCG@10 where every
#: evaluated item is warm; set it (or tune it) where items without interactions must rank
#: among warm ones (docs/model.md, "Cold-start simulation").
COLD_SIMULATION = 0.0


@dataclass(frozen=True)
class DDPGConfig:
    """Settings of the DDPG decision layer (see ``training/policy.py``)."""

    #: Hidden layer sizes of the actor and critic MLPs.
    actor_hidden: tuple[int, ...] = (128, 64)
    critic_hidden: tuple[int, ...] = (128, 64)
    actor_lr: float = 1e-4
    critic_lr: float = 1e-3
    #: Discount factor γ of the critic target (paper eq. 4).
    gamma: float = 0.9
    #: Soft update rate τ of the target networks: θ' ← τθ + (1 − τ)θ'.
    tau: float = 0.01
    buffer_size: int = 50_000
    batch_size: int = 256
    #: Environment steps (each a batch of ``env_batch`` users) in offline training.
    steps: int = 150
    env_batch: int = 256
    updates_per_step: int = 1
    #: Exploration noise: "gaussian" or "ou" (Ornstein–Uhlenbeck).
    noise: str = "gaussian"
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


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run depends on.

    The defaults train the DP-GCN model on a demo graph (~2,000 users, 500 items, ~60k edges)
    in well under two minutes on two CPU cores.
    """

    #: Registry name of the model (see ``training.models.MODEL_REGISTRY``).
    model: str = "dpgcn"
    #: Embedding dimension D (paper: 128).
    dim: int = 64
    #: Graph convolution layers per node type.
    num_layers: int = 2
    #: Epoch cap. High enough that no model's best epoch sits at it on the published datasets
    #: (the reports flag a run whose best epoch is the cap: "stopped at cap").
    epochs: int = 200
    lr: float = 5e-3
    weight_decay: float = 0.0
    batch_size: int = 2048
    #: Sampled negative items per positive (paper eq. 7, the set S⁻).
    num_negatives: int = 2
    dropout: float = 0.0
    #: Hidden sizes of the MLPs (fusion layer, baselines' deep parts).
    mlp_hidden: tuple[int, ...] = (64,)
    seed: int = 0
    #: "auto" (CUDA when available), "cpu", "cuda" or "cuda:N".
    device: str = "auto"
    #: Automatic mixed precision; only ever used on CUDA.
    mixed_precision: bool = True
    #: Stop when the validation ``select_metric`` has not improved for this many epochs
    #: (0 = never stop early).
    patience: int = 10
    #: Validation metric that picks the best epoch (and the DDPG α): a full-ranking metric
    #: (``ndcg@K``, ``recall@K``, ``hr@K``, ``precision@K``, ``map@K``, ``mrr``) for
    #: recommendation, ``auc`` (held-out item vs ``click_negatives`` samples) for click
    #: prediction.
    select_metric: str = "ndcg@10"
    #: How validation and test interactions are held out (``training.splits.PROTOCOLS``).
    protocol: str = "leave-last-out"
    #: Train / validation / test shares of each user's interactions (ratio protocols).
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)
    #: Share of the items held out for test (and as many for validation) by ``cold-item``.
    cold_share: float = 0.1
    #: Deterministic kernels (``training.device.deterministic``): two runs of one seed agree.
    deterministic: bool = True
    #: Weight of the user → query BCE loss (query suggestion) next to the user → item loss.
    query_loss_weight: float = 0.5
    #: Behaviour sequence length of the DIN-style baselines.
    history_len: int = 20
    #: Users with fewer interactions keep all of them in training (no val/test item).
    min_interactions: int = 3
    #: Sampled negatives per positive in the click-prediction sets (DIN protocol).
    click_negatives: int = 4
    #: Candidate-set size (1 positive + n − 1 sampled negatives) of the sampled ranking protocol.
    sampled_candidates: int = 100
    #: Cut-offs of the top-K metrics.
    top_k: tuple[int, ...] = (5, 10, 20)
    #: At most this many test users are ranked against all items (sampled with the seed).
    eval_max_users: int = 5000
    #: Reward per interaction type (offline environment of the DDPG layer).
    rewards: tuple[tuple[str, float], ...] = DEFAULT_REWARDS
    #: Initialise term vectors from a skip-gram model trained on the export's own term
    #: co-occurrences (queries' and items' terms); no download.
    word2vec_terms: bool = False
    #: Neighbours averaged by the static-feature k-NN cold-start rule.
    cold_start_k: int = 10
    #: DP-GCN's cold-start simulation (DropoutNet on the graph): the share of the trained
    #: items that lose their ID vector and their interaction edges at each training step, so
    #: that the model learns to score an item without interactions on the warm items' scale
    #: (0: off; :class:`training.models.dpgcn.DPGCN`).
    cold_simulation: float = COLD_SIMULATION
    #: How an epoch visits the graph: ``"full"`` (every step propagates over the whole
    #: training graph, :func:`training.train.train_epoch`), ``"minibatch"`` (each step sees the
    #: neighbourhood PyG's ``LinkNeighborLoader`` samples around a batch of interactions,
    #: :mod:`training.minibatch`; DP-GCN models only) or ``"auto"``: mini-batch from
    #: ``minibatch_min_edges`` training interactions on, for models that support it.
    batching: str = "auto"
    #: Training interactions from which ``batching="auto"`` picks mini-batches. A full-batch
    #: epoch costs (interactions / batch_size) whole-graph propagations, so its time grows with
    #: the square of the graph (docs/benchmarks-training.md).
    minibatch_min_edges: int = 1_000_000
    #: Sampled neighbours per relation at each hop of a mini-batch (``-1``: all), one value per
    #: graph layer; the last value repeats for layers beyond the tuple.
    fanout: tuple[int, ...] = (10, 5)
    #: What a hop's ``fanout`` counts: ``"type"`` (a node draws about k neighbours in all,
    #: split over the relations that reach its type) or ``"relation"`` (k per relation).
    fanout_per: str = "type"
    #: Seconds between training checkpoints when a checkpoint directory is given (written at
    #: the end of the first epoch after the interval has passed; 0: after every epoch).
    checkpoint_interval_s: float = 60.0
    #: Data-parallel ranks of ``train_from_export`` (``training.distributed``; one per GPU).
    processes: int = 1
    ddpg: DDPGConfig = field(default_factory=DDPGConfig)

    def __post_init__(self) -> None:
        positive = {
            "dim": self.dim,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "num_negatives": self.num_negatives,
            "click_negatives": self.click_negatives,
            "sampled_candidates": self.sampled_candidates - 1,
            "cold_start_k": self.cold_start_k,
            "processes": self.processes,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ConfigError(f"TrainConfig.{name} must be positive, got {value!r}")
        if self.num_layers < 0:
            raise ConfigError("TrainConfig.num_layers must be >= 0")
        if self.lr <= 0:
            raise ConfigError("TrainConfig.lr must be positive")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("TrainConfig.dropout must be in [0, 1)")
        if not self.top_k or min(self.top_k) <= 0:
            raise ConfigError("TrainConfig.top_k must hold positive cut-offs")
        if self.min_interactions < 3:
            raise ConfigError("TrainConfig.min_interactions must be >= 3 (train, val, test)")
        _check_select_metric(self.select_metric)
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"unknown protocol {self.protocol!r}; known: {', '.join(PROTOCOLS)}")
        if len(self.ratios) != 3 or min(self.ratios) <= 0 or abs(sum(self.ratios) - 1) > 1e-6:
            raise ConfigError(
                f"TrainConfig.ratios must be 3 positive shares summing to 1, got {self.ratios!r}"
            )
        if not 0.0 < self.cold_share < 0.5:
            raise ConfigError("TrainConfig.cold_share must be in (0, 0.5)")
        if not 0.0 <= self.cold_simulation < 1.0:
            raise ConfigError(
                f"TrainConfig.cold_simulation must be in [0, 1), got {self.cold_simulation!r}"
            )
        if self.ddpg.noise not in ("gaussian", "ou"):
            raise ConfigError(f"unknown DDPG noise {self.ddpg.noise!r}")
        if not 0.0 < self.ddpg.tau <= 1.0:
            raise ConfigError("DDPGConfig.tau must be in (0, 1]")
        if self.batching not in BATCHING:
            raise ConfigError(
                f"unknown TrainConfig.batching {self.batching!r}; known: {', '.join(BATCHING)}"
            )
        if self.minibatch_min_edges < 0:
            raise ConfigError("TrainConfig.minibatch_min_edges must be >= 0")
        if not self.fanout or any(k == 0 or k < -1 for k in self.fanout):
            raise ConfigError(
                f"TrainConfig.fanout must hold positive neighbour counts or -1 (all) per hop, "
                f"got {self.fanout!r}"
            )
        if self.fanout_per not in FANOUT_PER:
            raise ConfigError(
                f"unknown TrainConfig.fanout_per {self.fanout_per!r}; "
                f"known: {', '.join(FANOUT_PER)}"
            )
        if not self.checkpoint_interval_s >= 0:
            raise ConfigError("TrainConfig.checkpoint_interval_s must be >= 0")
        if self.device != "auto" and not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ConfigError(f"unknown device {self.device!r}")

    def fanout_per_layer(self) -> list[int]:
        """The sampled neighbours per relation at each of the ``num_layers`` hops."""
        return [self.fanout[min(h, len(self.fanout) - 1)] for h in range(self.num_layers)]

    def reward_of(self) -> dict[str, float]:
        """The reward table as a dict (relationship type → reward)."""
        return dict(self.rewards)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = dict(data)
        ddpg = data.pop("ddpg", {})
        if isinstance(ddpg, DDPGConfig):
            ddpg_cfg = ddpg
        else:
            ddpg_cfg = DDPGConfig(**_coerce(DDPGConfig, ddpg, "DDPGConfig"))
        return cls(ddpg=ddpg_cfg, **_coerce(cls, data, "TrainConfig"))

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"TrainConfig JSON is invalid: {e}") from e
        if not isinstance(data, dict):
            raise ConfigError("TrainConfig JSON must be an object")
        return cls.from_dict(data)


_RANKING_SELECT = ("ndcg", "recall", "hr", "precision", "map")


def _check_select_metric(name: str) -> None:
    if name in ("auc", "mrr"):
        return
    metric, _, k = name.partition("@")
    if metric in _RANKING_SELECT and k.isdigit() and int(k) > 0:
        return
    raise ConfigError(
        f"TrainConfig.select_metric {name!r} is not auc, mrr or <metric>@K with metric one of "
        f"{', '.join(_RANKING_SELECT)}"
    )


def _coerce(cls: type, data: dict[str, Any], name: str) -> dict[str, Any]:
    """Check field names and turn JSON lists back into the tuples the dataclass holds."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"unknown {name} field(s): {', '.join(unknown)}")
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        out[key] = value
    return out
