"""Serving-time scoring from a model directory, in numpy.

``Recommender.load(model_dir)`` reads ``embeddings.npz`` (and ``policy.pt`` /
``user_features.npz`` when present). Scoring is one user vector times the item matrix
(one memory-bound mat-vec) and an ``argpartition`` for the top K (measured costs:
``docs/benchmarks-api.md``). torch is imported only to read ``policy.pt``; the actor then
runs as numpy matrix products.

**Policy adjustment.** When the model has a DDPG decision layer, the user vector used for
scoring is ``u' = u + α · scale · μ(s)`` with state ``s = [u ‖ mean of the user's N most recent
item vectors]`` (``N = state_history``; the recent items are those stored at training time,
or the ``history`` passed to :meth:`Recommender.recommend`). ``α`` (chosen on validation data)
and ``scale`` are stored in ``policy.pt``; ``α = 0`` means the policy is off.

Scores are logits up to a per-model constant: higher is better.
"""

from __future__ import annotations

import bisect
import json
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from training.config import TrainConfig
from training.config_paths import config_paths
from training.errors import ModelDirError

logger = logging.getLogger(__name__)

FloatMatrix = NDArray[np.float32]


def mean_history(item_vecs: FloatMatrix, history: NDArray[np.int64]) -> FloatMatrix:
    """Mean of item vectors over each row of ``history`` (``-1`` = padding; none → zeros)."""
    history = np.atleast_2d(history)
    mask = history >= 0
    vecs = item_vecs[np.where(mask, history, 0)] * mask[..., None]
    return (vecs.sum(1) / np.maximum(mask.sum(1), 1)[:, None]).astype(np.float32)


def policy_states(
    user_vecs: FloatMatrix, item_vecs: FloatMatrix, history: NDArray[np.int64]
) -> FloatMatrix:
    """DDPG states ``[u ‖ mean recent item vectors]``: ``[B, D]``, ``[I, D]``, ``[B, N]`` →
    ``[B, 2D]``."""
    return np.concatenate([user_vecs, mean_history(item_vecs, history)], axis=1).astype(np.float32)


@dataclass
class NumpyActor:
    """The DDPG actor as numpy: ReLU MLP with a tanh output."""

    layers: list[tuple[FloatMatrix, FloatMatrix]]

    def __call__(self, states: FloatMatrix) -> FloatMatrix:
        h = np.asarray(states, np.float32)
        for j, (w, b) in enumerate(self.layers):
            h = h @ w.T + b
            h = np.tanh(h) if j == len(self.layers) - 1 else np.maximum(h, 0)
        return h.astype(np.float32)


@dataclass
class PolicyAdjuster:
    """Applies the DDPG action to user vectors: ``u' = u + α · scale · μ(s)``.

    :meth:`adjust` does it all from the state inputs (the actor runs only when ``α ≠ 0``).
    A caller that tries several ``α`` on the same users computes the action once
    (:meth:`action`, which does not depend on ``α``) and applies it at each (:meth:`apply`)."""

    actor: NumpyActor
    alpha: float
    scale: float
    state_history: int
    #: Recent item rows per user ``[U, N]`` (``-1`` padded), aligned with ``User.ids``.
    user_history: NDArray[np.int64] | None = None
    version: int = 0

    def adjust(
        self, user_vecs: FloatMatrix, item_vecs: FloatMatrix, history: NDArray[np.int64]
    ) -> FloatMatrix:
        """The adjusted user vectors ``[B, D]`` from the users' vectors ``[B, D]``, the item
        vectors ``[I, D]`` and each user's recent item rows ``[B, N]`` (``-1`` padded);
        ``user_vecs`` itself when ``α = 0``."""
        if self.alpha == 0.0:
            return user_vecs
        return self.apply(user_vecs, self.action(user_vecs, item_vecs, history))

    def action(
        self, user_vecs: FloatMatrix, item_vecs: FloatMatrix, history: NDArray[np.int64]
    ) -> FloatMatrix:
        """The actor's action ``μ(s)`` ``[B, D]``; it does not depend on ``α``."""
        return self.actor(policy_states(user_vecs, item_vecs, history))

    def apply(self, user_vecs: FloatMatrix, action: FloatMatrix) -> FloatMatrix:
        """``u + α · scale · action`` for the :meth:`action` of the same users (``user_vecs``
        itself when ``α = 0``)."""
        if self.alpha == 0.0:
            return user_vecs
        return (user_vecs + self.alpha * self.scale * action).astype(np.float32)


def load_policy_adjuster(path: Path) -> PolicyAdjuster:
    """Read ``policy.pt`` (imports torch) into a numpy :class:`PolicyAdjuster`."""
    import torch

    try:
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as e:
        raise ModelDirError(f"cannot load policy {path}: {e}") from e
    return _adjuster_from_payload(payload, str(path))


def load_policy_adjuster_bytes(blob: bytes, *, with_history: bool = True) -> PolicyAdjuster:
    """The same as :func:`load_policy_adjuster` for the bytes of a ``policy.pt`` file (as
    stored in the graph). ``with_history=False`` drops the training-time recent items (serving
    reads each user's recent items from the graph instead)."""
    import io

    import torch

    try:
        payload = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except Exception as e:  # corrupt or foreign bytes fail in many ways (pickle, zip, …)
        raise ModelDirError(f"cannot load policy from {len(blob)} bytes: {e}") from e
    if not with_history and isinstance(payload, dict):
        payload.pop("user_history", None)
    return _adjuster_from_payload(payload, "policy bytes")


def _adjuster_from_payload(payload: Any, source: str) -> PolicyAdjuster:
    try:
        actor = payload["actor"]
        keys = sorted({k.rsplit(".", 1)[0] for k in actor}, key=lambda k: int(k.split(".")[-1]))
        layers = [
            (actor[f"{k}.weight"].float().numpy(), actor[f"{k}.bias"].float().numpy()) for k in keys
        ]
        history = payload.get("user_history")
        return PolicyAdjuster(
            actor=NumpyActor(layers),
            alpha=float(payload["alpha"]),
            scale=float(payload["scale"]),
            state_history=int(payload["config"]["state_history"]),
            user_history=None if history is None else history.numpy().astype(np.int64),
            version=int(payload.get("version", 0)),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ModelDirError(f"{source} is not a policy file: {e}") from e


@dataclass
class Recommender:
    """Top-K items, similar items, query suggestions and cold-start vectors from a model dir."""

    user_ids: NDArray[np.str_]
    user_vecs: FloatMatrix
    item_ids: NDArray[np.str_]
    item_vecs: FloatMatrix
    query_ids: NDArray[np.str_] | None = None
    query_vecs: FloatMatrix | None = None
    policy: PolicyAdjuster | None = None
    user_features: FloatMatrix | None = None
    cold_start_k: int = 10
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._user_index = {u: i for i, u in enumerate(self.user_ids.tolist())}
        self._item_index = {u: i for i, u in enumerate(self.item_ids.tolist())}
        norms = np.linalg.norm(self.item_vecs, axis=1, keepdims=True)
        self._item_unit = (self.item_vecs / np.maximum(norms, 1e-12)).astype(np.float32)
        # Users' scoring vectors with the policy applied once, at load time.
        self._scoring_users = self.user_vecs
        if self.policy is not None and self.policy.user_history is not None:
            self._scoring_users = self.policy.adjust(
                self.user_vecs, self.item_vecs, self.policy.user_history
            )
        self._query_sorted: list[tuple[str, int]] = []
        if self.query_ids is not None:
            self._query_sorted = sorted(
                (q.lower(), i) for i, q in enumerate(self.query_ids.tolist())
            )
            self._query_keys = [q for q, _ in self._query_sorted]
        if self.user_features is not None:
            f = self.user_features
            self._feat_mean = f.mean(0)
            self._feat_std = np.maximum(f.std(0), 1e-6)
            self._feat_z = ((f - self._feat_mean) / self._feat_std).astype(np.float32)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, model_dir: Path) -> Recommender:
        model_dir = Path(model_dir)
        path = model_dir / "embeddings.npz"
        if not path.is_file():
            raise ModelDirError(f"{model_dir} has no embeddings.npz")
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        for key in ("User.ids", "User.embedding", "Item.ids", "Item.embedding"):
            if key not in arrays:
                raise ModelDirError(f"{path} lacks {key}")
        config: dict[str, Any] = {}
        if (model_dir / "train_config.json").is_file():
            config = json.loads((model_dir / "train_config.json").read_text())
        policy = None
        if (model_dir / "policy.pt").is_file():
            policy = load_policy_adjuster(model_dir / "policy.pt")
        features = None
        feat_path = model_dir / "user_features.npz"
        if feat_path.is_file():
            with np.load(feat_path, allow_pickle=False) as z:
                if z["User.ids"].shape == arrays["User.ids"].shape and len(z["User.x"]):
                    features = np.asarray(z["User.x"], np.float32)
        rec = cls(
            user_ids=arrays["User.ids"].astype(str),
            user_vecs=np.asarray(arrays["User.embedding"], np.float32),
            item_ids=arrays["Item.ids"].astype(str),
            item_vecs=np.asarray(arrays["Item.embedding"], np.float32),
            query_ids=arrays["Query.ids"].astype(str) if "Query.ids" in arrays else None,
            query_vecs=np.asarray(arrays["Query.embedding"], np.float32)
            if "Query.embedding" in arrays
            else None,
            policy=policy,
            user_features=features,
            cold_start_k=int(config_paths(TrainConfig, config).get("serving.cold_start_k", 10)),
            config=config,
        )
        logger.info(
            "loaded recommender from %s: %d users, %d items, %s queries, policy=%s",
            model_dir,
            len(rec.user_ids),
            len(rec.item_ids),
            0 if rec.query_ids is None else len(rec.query_ids),
            policy is not None,
        )
        return rec

    # ------------------------------------------------------------------ helpers
    def has_user(self, user_id: str) -> bool:
        return user_id in self._user_index

    def has_item(self, item_id: str) -> bool:
        return item_id in self._item_index

    def user_vector(self, user_id: str, history: Sequence[str] | None = None) -> FloatMatrix:
        """The scoring vector of a known user (policy-adjusted when a policy is present).
        ``history`` (item ids, oldest first) overrides the stored recent items."""
        try:
            row = self._user_index[user_id]
        except KeyError:
            raise KeyError(f"unknown user {user_id!r}") from None
        if history is None or self.policy is None:
            return self._scoring_users[row]
        return self.adjust_vector(self.user_vecs[row], history)

    def adjust_vector(self, user_vec: FloatMatrix, history: Sequence[str]) -> FloatMatrix:
        """Apply the policy to any user vector given recent item ids (no-op without policy)."""
        if self.policy is None:
            return np.asarray(user_vec, np.float32)
        n = self.policy.state_history
        rows = [self._item_index[i] for i in history if i in self._item_index][-n:]
        hist = np.full((1, n), -1, np.int64)
        if rows:
            hist[0, n - len(rows) :] = rows
        return self.policy.adjust(np.asarray(user_vec, np.float32)[None], self.item_vecs, hist)[0]

    @staticmethod
    def _top_k(scores: FloatMatrix, k: int) -> NDArray[np.int64]:
        """Indices of the ``k`` largest scores, best first (``argpartition``: O(n))."""
        n = len(scores)
        k = min(k, n)
        if k <= 0:
            return np.zeros(0, np.int64)
        part = np.argpartition(scores, n - k)[n - k :] if k < n else np.arange(n)
        return part[np.argsort(-scores[part], kind="stable")]

    # ------------------------------------------------------------------ scoring
    def recommend_vector(
        self,
        user_vec: FloatMatrix,
        k: int,
        exclude: Collection[str] = frozenset(),
        candidates: list[str] | None = None,
    ) -> list[tuple[str, float]]:
        """Top-``k`` items for an arbitrary user vector (e.g. a cold-start vector)."""
        if candidates is not None:
            rows = np.fromiter(
                (self._item_index[c] for c in candidates if c in self._item_index), np.int64
            )
            if exclude:
                keep = np.array([self.item_ids[r] not in exclude for r in rows], dtype=bool)
                rows = rows[keep] if len(rows) else rows
            rows = np.unique(rows)
            scores = self.item_vecs[rows] @ user_vec
            top = self._top_k(scores, k)
            return [(str(self.item_ids[rows[t]]), float(scores[t])) for t in top]
        scores = self.item_vecs @ user_vec  # a fresh array: safe to mask in place
        if exclude:
            ex = [self._item_index[e] for e in exclude if e in self._item_index]
            if ex:
                scores[ex] = -np.inf
        top = self._top_k(scores, k)
        return [(str(self.item_ids[t]), float(scores[t])) for t in top if np.isfinite(scores[t])]

    def recommend(
        self,
        user_id: str,
        k: int,
        exclude: Collection[str] = frozenset(),
        candidates: list[str] | None = None,
        history: Sequence[str] | None = None,
    ) -> list[tuple[str, float]]:
        """Top-``k`` ``(item_id, score)`` for a known user, best first. Items in ``exclude``
        are skipped; ``candidates`` restricts scoring to those items (unknown ids ignored).
        Raises ``KeyError`` for an unknown user (see :meth:`cold_start_vector`)."""
        return self.recommend_vector(self.user_vector(user_id, history), k, exclude, candidates)

    def similar_items(self, item_id: str, k: int) -> list[tuple[str, float]]:
        """Top-``k`` items by cosine similarity of item vectors (the item itself excluded)."""
        try:
            row = self._item_index[item_id]
        except KeyError:
            raise KeyError(f"unknown item {item_id!r}") from None
        scores = self._item_unit @ self._item_unit[row]
        scores[row] = -np.inf
        top = self._top_k(scores, k)
        return [(str(self.item_ids[t]), float(scores[t])) for t in top if np.isfinite(scores[t])]

    def suggest_queries(
        self, user_id: str, k: int, prefix: str | None = None
    ) -> list[tuple[str, float]]:
        """Top-``k`` ``(query, score)`` for a user; with ``prefix``, only queries whose text
        starts with it (case-insensitive). Empty when the model has no queries."""
        if self.query_vecs is None or self.query_ids is None:
            return []
        user_vec = self.user_vector(user_id)
        if prefix:
            p = " ".join(prefix.lower().split())
            lo = bisect.bisect_left(self._query_keys, p)
            hi = bisect.bisect_left(self._query_keys, p + "\U0010ffff")
            rows = np.array([i for _, i in self._query_sorted[lo:hi]], dtype=np.int64)
        else:
            rows = np.arange(len(self.query_ids))
        if len(rows) == 0:
            return []
        scores = self.query_vecs[rows] @ user_vec
        top = self._top_k(scores, k)
        return [(str(self.query_ids[rows[t]]), float(scores[t])) for t in top]

    def cold_start_vector(self, static_features: NDArray[np.float32]) -> FloatMatrix:
        """A vector for an unseen user: the mean vector of the ``cold_start_k`` known users
        nearest in static features (standardised Euclidean distance), as the paper's k-NN
        cold-start rule. Without stored features, the mean user vector."""
        if self.user_features is None or len(self.user_features) == 0:
            return self._scoring_users.mean(0).astype(np.float32)
        f = np.asarray(static_features, np.float32).reshape(-1)
        if f.shape[0] != self.user_features.shape[1]:
            raise ValueError(
                f"expected {self.user_features.shape[1]} static features, got {f.shape[0]}"
            )
        z = (f - self._feat_mean) / self._feat_std
        d = ((self._feat_z - z) ** 2).sum(1)
        k = min(self.cold_start_k, len(d))
        nearest = np.argpartition(d, k - 1)[:k]
        return self._scoring_users[nearest].mean(0).astype(np.float32)
