r"""Market segments from user embeddings: k-means on L2-normalised vectors, the number of
segments chosen by silhouette over a range (or fixed), lift of over-indexing features, names.

Pure numpy / scikit-learn: embeddings and counts in, arrays and strings out (no graph access).

* **Clustering.** Embeddings are L2-normalised (cosine geometry, as the vector indexes use) and
  clustered with k-means (``n_init`` restarts, seeded).
* **Number of segments.** With ``SegmentConfig.k`` set, that many. Otherwise every
  :math:`k \in [k_{min}, k_{max}]` is fitted and the one with the highest mean silhouette
  coefficient wins (computed on at most ``silhouette_sample`` users, seeded); ties go to the
  smaller k.
* **Membership score** of user *u* in its segment: the margin
  :math:`1 - d_1 / d_2` between the distance to its own centre :math:`d_1` and to the nearest
  other centre :math:`d_2` — 0 on a border, towards 1 at the centre.
* **Lift** of a feature *f* (category, term, query, item) in segment *s*: the share of the
  segment's events that hit *f* divided by the share of all events that hit *f*,
  :math:`\mathrm{lift}(s, f) = \frac{n_{sf} / n_s}{n_f / n}`; 1 means "as everyone", 2 means
  "twice as often".
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

logger = logging.getLogger(__name__)


class SegmentError(ValueError):
    """Bad input for segmentation (too few users, bad k range, shapes)."""


@dataclass(frozen=True)
class SegmentConfig:
    """How users are segmented."""

    #: A fixed number of segments; ``None`` chooses it by silhouette over [k_min, k_max].
    k: int | None = None
    k_min: int = 2
    k_max: int = 10
    #: k-means restarts per k.
    n_init: int = 10
    seed: int = 0
    #: Users the silhouette is computed on (a seeded sample for large sets).
    silhouette_sample: int = 4000

    def __post_init__(self) -> None:
        if self.k is not None and self.k < 2:
            raise SegmentError(f"SegmentConfig.k must be >= 2, got {self.k}")
        if self.k_min < 2 or self.k_max < self.k_min:
            raise SegmentError(f"bad k range [{self.k_min}, {self.k_max}]: need 2 <= min <= max")
        if self.n_init < 1 or self.silhouette_sample < 10:
            raise SegmentError("n_init must be >= 1 and silhouette_sample >= 10")


@dataclass
class Segmentation:
    """The outcome of :func:`cluster_users`."""

    labels: np.ndarray  # [U] int, 0..k-1, segments numbered by decreasing size
    scores: np.ndarray  # [U] float membership margin in [0, 1]
    centres: np.ndarray  # [k, D] on the normalised embeddings
    k: int
    criterion: str  # "fixed" or "silhouette"
    silhouette: float  # mean silhouette of the chosen k
    silhouette_by_k: dict[int, float] = field(default_factory=dict)

    def sizes(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=self.k)


def normalize_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def _silhouette(x: np.ndarray, labels: np.ndarray, sample: int, seed: int) -> float:
    from sklearn.metrics import silhouette_score

    if len(np.unique(labels)) < 2:
        return -1.0
    size = min(sample, len(x))
    return float(silhouette_score(x, labels, sample_size=size, random_state=seed))


def _kmeans(x: np.ndarray, k: int, config: SegmentConfig) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=k, n_init=config.n_init, random_state=config.seed).fit(x)
    return km.labels_.astype(np.int64), km.cluster_centers_


def cluster_users(embeddings: np.ndarray, config: SegmentConfig | None = None) -> Segmentation:
    """Segment users by their embeddings ``[U, D]``."""
    config = config or SegmentConfig()
    emb = np.asarray(embeddings)
    if emb.ndim != 2 or emb.shape[1] == 0:
        raise SegmentError(f"embeddings must be a [users, dim] matrix, got shape {emb.shape}")
    if not np.isfinite(emb).all():
        raise SegmentError("embeddings contain NaN or infinite values")
    x = normalize_rows(emb)
    n = len(x)
    ks = [config.k] if config.k is not None else list(range(config.k_min, config.k_max + 1))
    ks = [k for k in ks if k < n]
    if not ks:
        raise SegmentError(f"{n} users are too few for {config.k or config.k_min} segments")
    by_k: dict[int, float] = {}
    best: tuple[float, int, np.ndarray, np.ndarray] | None = None
    for k in ks:
        labels, centres = _kmeans(x, k, config)
        score = _silhouette(x, labels, config.silhouette_sample, config.seed)
        by_k[k] = round(score, 4)
        if best is None or score > best[0] + 1e-9:
            best = (score, k, labels, centres)
    assert best is not None
    score, k, labels, centres = best
    labels, centres = _order_by_size(labels, centres)
    logger.info("segmented %d users into %d segments (silhouette %.3f)", n, k, score)
    return Segmentation(
        labels=labels,
        scores=membership_scores(x, centres, labels),
        centres=centres,
        k=k,
        criterion="fixed" if config.k is not None else "silhouette",
        silhouette=float(score),
        silhouette_by_k=by_k,
    )


def _order_by_size(labels: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber segments 0..k-1 by decreasing size (ties by old number): stable names."""
    sizes = np.bincount(labels, minlength=len(centres))
    order = sorted(range(len(centres)), key=lambda c: (-sizes[c], c))
    remap = np.empty(len(centres), dtype=np.int64)
    remap[order] = np.arange(len(centres))
    return remap[labels], centres[order]


def membership_scores(x: np.ndarray, centres: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``1 - d_own / d_nearest_other`` per user, clipped to [0, 1] (1.0 with one segment)."""
    d = np.linalg.norm(x[:, None, :] - centres[None, :, :], axis=2)
    own = d[np.arange(len(x)), labels]
    if centres.shape[0] < 2:
        return np.ones(len(x))
    d_other = d.copy()
    d_other[np.arange(len(x)), labels] = np.inf
    other = d_other.min(axis=1)
    return np.clip(1.0 - own / np.maximum(other, 1e-12), 0.0, 1.0)


def lift(counts: np.ndarray) -> np.ndarray:
    """Lift of each (segment, feature) cell of an event-count matrix ``[k, F]``:
    ``(n_sf / n_s) / (n_f / n)``; 0 where a segment or feature has no events."""
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 2:
        raise SegmentError("lift needs a [segments, features] count matrix")
    total = c.sum()
    seg = c.sum(axis=1, keepdims=True)
    feat = c.sum(axis=0, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (c / seg) / (feat / total)
    return np.nan_to_num(out, nan=0.0, posinf=0.0)


def project_2d(embeddings: np.ndarray) -> np.ndarray:
    """A PCA projection ``[U, 2]`` of the normalised embeddings (for the segment map)."""
    from sklearn.decomposition import PCA

    x = normalize_rows(embeddings)
    if x.shape[1] < 2:
        return np.column_stack([x[:, 0], np.zeros(len(x))])
    return np.asarray(PCA(n_components=2, random_state=0).fit_transform(x))


def adjusted_rand(truth: Sequence[int] | np.ndarray, found: Sequence[int] | np.ndarray) -> float:
    """Agreement of found segments with known ones (1 = identical partitions, ~0 = chance)."""
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(np.asarray(truth), np.asarray(found)))
