r"""Market segments from user embeddings: k-means on L2-normalised vectors (optionally joined
with each user's propagated neighbourhood), the number of segments chosen by the eigengap of
a k-nearest-neighbour graph (or by silhouette, or fixed), lift of over-indexing features, names.

Pure numpy / scipy / scikit-learn: embeddings and counts in, arrays and strings out (no graph
access). The choices are measured in ``bench/bench_segments.py`` and argued in
``docs/segments.md``.

* **Features.** Embeddings are L2-normalised: the model scores by dot products, so the
  direction of a user vector is what it prefers and cosine geometry is the matching one (the
  vector indexes use it too). With ``neighbourhood`` given — per user, the interaction-weighted
  mean of the L2-normalised embeddings of the items it clicked, rated or bought
  (:func:`neighbourhood_vectors`) — each user is the normalised concatenation
  :math:`[\hat u ; \hat n_u] / \sqrt 2` of its own direction and its neighbourhood's: one
  more propagation step over the user's own interactions, which averages out the noise of a
  single user vector (a user without interactions keeps only its own half).
* **Clustering.** k-means (``n_init`` restarts, seeded) on those features. The candidate k
  are fitted on at most ``fit_sample`` users (a seeded sample; all users when fewer, and the
  result is then exactly the all-users one), the criterion picks k from those fits, and the
  chosen k is fitted once on all users, started from the sample's centres for that k (one
  Lloyd run, no restarts): the restarts and the candidates cost the sample's size, not the
  users', and only one fit sees every user.
* **Number of segments.** With ``SegmentConfig.k`` set, that many. Otherwise
  (``criterion="eigengap"``, the default) the symmetric ``knn``-nearest-neighbour graph of the
  features is built and :math:`k = \arg\max_{k \in [k_{min}, k_{max}]} (\lambda_{k+1} -
  \lambda_k)` over the eigenvalues :math:`\lambda_1 \le \lambda_2 \le \dots` of its normalised
  Laplacian :math:`I - D^{-1/2} A D^{-1/2}` — a graph of k well-separated groups has k
  eigenvalues near 0 and then a gap (von Luxburg, "A tutorial on spectral clustering",
  2007, §8.3). When the kNN graph itself falls apart into c connected components with
  :math:`c \in [k_{min}, k_{max}]`, its first c eigenvalues are exactly 0 (ibid., Prop. 4) —
  the ideal case the heuristic approximates — and k = c: the gap after them then measures how
  tightly each component holds together, not whether the components are separate, and a
  larger gap further up the spectrum (sub-groups within a component) must not outvote
  groups that share no edge at all. Computed on at most ``eigengap_sample`` users (seeded).
  ``criterion="silhouette"``
  keeps the former rule: the k with the highest mean silhouette coefficient (ties: smaller k).
  The silhouette of every k is reported either way.
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
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix

logger = logging.getLogger(__name__)


class SegmentError(ValueError):
    """Bad input for segmentation (too few users, bad k range, shapes)."""


CRITERIA = ("eigengap", "silhouette")


@dataclass(frozen=True)
class SegmentConfig:
    """How users are segmented."""

    #: A fixed number of segments; ``None`` chooses it by ``criterion`` over [k_min, k_max].
    k: int | None = None
    k_min: int = 2
    k_max: int = 10
    #: How k is chosen: "eigengap" (of the kNN graph's normalised Laplacian) or "silhouette".
    criterion: str = "eigengap"
    #: Neighbours per user in the kNN graph of the eigengap criterion.
    knn: int = 10
    #: k-means restarts per k.
    n_init: int = 10
    seed: int = 0
    #: Users the silhouette is computed on (a seeded sample for large sets).
    silhouette_sample: int = 4000
    #: Users the eigengap is computed on (a seeded sample; a dense eigendecomposition).
    eigengap_sample: int = 2000
    #: Users the candidate k (with their ``n_init`` restarts each) are fitted on (a seeded
    #: sample, all users when fewer); the chosen k is then fitted once on all users from the
    #: sample's centres.
    fit_sample: int = 50_000

    def __post_init__(self) -> None:
        if self.k is not None and self.k < 2:
            raise SegmentError(f"SegmentConfig.k must be >= 2, got {self.k}")
        if self.k_min < 2 or self.k_max < self.k_min:
            raise SegmentError(f"bad k range [{self.k_min}, {self.k_max}]: need 2 <= min <= max")
        if self.n_init < 1 or self.silhouette_sample < 10:
            raise SegmentError("n_init must be >= 1 and silhouette_sample >= 10")
        if self.criterion not in CRITERIA:
            raise SegmentError(f"unknown criterion {self.criterion!r}; use one of {CRITERIA}")
        if self.eigengap_sample < 20:
            raise SegmentError("eigengap_sample must be >= 20")
        if self.knn < 2:
            raise SegmentError(f"SegmentConfig.knn must be >= 2, got {self.knn}")
        largest = self.k if self.k is not None else self.k_max
        if self.fit_sample < 100 or self.fit_sample <= largest:
            raise SegmentError(
                f"SegmentConfig.fit_sample must be >= 100 and above the largest k ({largest}), "
                f"got {self.fit_sample}"
            )


@dataclass
class Segmentation:
    """The outcome of :func:`cluster_users`."""

    labels: np.ndarray  # [U] int, 0..k-1, segments numbered by decreasing size
    scores: np.ndarray  # [U] float membership margin in [0, 1]
    centres: np.ndarray  # [k, F] on the clustered features
    k: int
    criterion: str  # "fixed", "eigengap" or "silhouette"
    silhouette: float  # mean silhouette of the chosen k
    silhouette_by_k: dict[int, float] = field(default_factory=dict)
    #: Eigengap lambda_{k+1} - lambda_k per candidate k (eigengap criterion only).
    eigengap_by_k: dict[int, float] = field(default_factory=dict)
    #: Whether the users' neighbourhoods were part of the features.
    neighbourhood: bool = False
    #: Connected components of the eigengap criterion's kNN graph (0: not computed); when
    #: they are a candidate k, they are the segments.
    components: int = 0
    #: Users the candidate k were fitted on (all users, or ``SegmentConfig.fit_sample``);
    #: ``silhouette_by_k`` is of those fits, ``silhouette`` of the final fit on all users.
    fit_users: int = 0

    def sizes(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=self.k)


def normalize_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def neighbourhood_vectors(
    n_users: int,
    item_vectors: np.ndarray,
    user_index: np.ndarray,
    item_index: np.ndarray,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Per user, the weighted mean of the L2-normalised vectors of the items it interacted
    with: ``[n_users, D]``, zero rows for users without interactions.

    ``user_index[e]``/``item_index[e]`` are the row numbers (into the user embeddings and
    ``item_vectors``) of interaction ``e``, ``weights[e]`` its weight (event count; 1 if
    omitted)."""
    from scipy.sparse import csr_matrix

    items = normalize_rows(np.asarray(item_vectors))
    u = np.asarray(user_index, dtype=np.int64)
    i = np.asarray(item_index, dtype=np.int64)
    w = np.ones(len(u)) if weights is None else np.asarray(weights, dtype=np.float64)
    if not (len(u) == len(i) == len(w)):
        raise SegmentError("interaction arrays differ in length")
    if len(u) and (u.min() < 0 or u.max() >= n_users or i.min() < 0 or i.max() >= len(items)):
        raise SegmentError("interaction index out of range")
    if len(u) and (w < 0).any():
        raise SegmentError("interaction weights must be >= 0")
    adjacency = csr_matrix((w, (u, i)), shape=(n_users, len(items)))
    total = np.asarray(adjacency.sum(axis=1)).ravel()
    return np.asarray(adjacency @ items) / np.maximum(total, 1e-12)[:, None]


#: The user → item interactions a neighbourhood is made of (as the lift statements count).
NEIGHBOURHOOD_TYPES = ("CLICKED", "PURCHASED", "RATED")


def export_neighbourhood(
    export_dir: Path, user_ids: Sequence[str], item_ids: Sequence[str], item_vectors: np.ndarray
) -> np.ndarray:
    """:func:`neighbourhood_vectors` of ``user_ids`` from an export directory's interactions
    (``graph.npz``, see docs/export-format.md) and item embeddings (e.g. a run's
    ``embeddings.npz``) — what ``graphstore.segments.read_neighbourhood`` reads from the graph."""
    user_row = {str(u): k for k, u in enumerate(user_ids)}
    item_row = {str(i): k for k, i in enumerate(item_ids)}
    users: list[np.ndarray] = []
    items: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    with np.load(Path(export_dir) / "graph.npz", allow_pickle=False) as graph:
        export_users = np.asarray([user_row.get(str(u), -1) for u in graph["User.ids"]])
        export_items = np.asarray([item_row.get(str(i), -1) for i in graph["Item.ids"]])
        for rel in NEIGHBOURHOOD_TYPES:
            key = f"User__{rel}__Item"
            if f"{key}.edge_index" not in graph:
                continue
            edges = np.asarray(graph[f"{key}.edge_index"], dtype=np.int64)
            u, i = export_users[edges[0]], export_items[edges[1]]
            keep = (u >= 0) & (i >= 0)
            users.append(u[keep])
            items.append(i[keep])
            weights.append(np.asarray(graph[f"{key}.weight"], dtype=np.float64)[keep])
    if not users:
        return np.zeros((len(user_row), np.asarray(item_vectors).shape[1]))
    return neighbourhood_vectors(
        len(user_row),
        item_vectors,
        np.concatenate(users),
        np.concatenate(items),
        np.concatenate(weights),
    )


def segment_features(embeddings: np.ndarray, neighbourhood: np.ndarray | None = None) -> np.ndarray:
    """The vectors users are clustered on: the normalised embedding, joined with the normalised
    neighbourhood when given (``[u ; n] / sqrt 2``; a zero neighbourhood row stays zero)."""
    x = normalize_rows(embeddings)
    if neighbourhood is None:
        return x
    nb = np.asarray(neighbourhood, dtype=np.float64)
    if nb.shape[0] != x.shape[0] or nb.ndim != 2:
        raise SegmentError(
            f"neighbourhood must be [{x.shape[0]}, D'], got shape {nb.shape} for {x.shape[0]} users"
        )
    if not np.isfinite(nb).all():
        raise SegmentError("neighbourhood contains NaN or infinite values")
    norms = np.linalg.norm(nb, axis=1, keepdims=True)
    nb = np.where(norms > 1e-12, nb / np.maximum(norms, 1e-12), 0.0)
    return normalize_rows(np.hstack([x, nb]))


def _sample(n: int, size: int, seed: int) -> np.ndarray:
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def _silhouette(x: np.ndarray, labels: np.ndarray, sample: int, seed: int) -> float:
    from sklearn.metrics import silhouette_score

    if len(np.unique(labels)) < 2:
        return -1.0
    size = min(sample, len(x))
    return float(silhouette_score(x, labels, sample_size=size, random_state=seed))


def knn_graph(x: np.ndarray, knn: int) -> csr_matrix:
    """The symmetric ``knn``-nearest-neighbour graph of the rows of ``x``: mutual neighbours
    weigh 1, one-sided ones 0.5."""
    from sklearn.neighbors import NearestNeighbors

    neighbours = min(knn, len(x) - 1)
    graph = NearestNeighbors(n_neighbors=neighbours).fit(x).kneighbors_graph(x)
    return csr_matrix(0.5 * (graph + graph.T))


def graph_components(adjacency: csr_matrix) -> int:
    """Number of connected components of an undirected graph (the multiplicity of the
    eigenvalue 0 of its normalised Laplacian)."""
    from scipy.sparse.csgraph import connected_components

    count, _ = connected_components(adjacency, directed=False)
    return int(count)


def eigengaps(
    x: np.ndarray, ks: Sequence[int], knn: int, adjacency: csr_matrix | None = None
) -> dict[int, float]:
    r"""``{k: lambda_{k+1} - lambda_k}`` for the normalised Laplacian of the symmetric
    ``knn``-nearest-neighbour graph of the rows of ``x`` (eigenvalues ascending, 1-based;
    ``adjacency``: that graph when already built, :func:`knn_graph`)."""
    from scipy.sparse import diags

    if adjacency is None:
        adjacency = knn_graph(x, knn)
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    scale = diags(1.0 / np.sqrt(np.maximum(degree, 1e-12)))
    normalized = scale @ adjacency @ scale
    # Dense: Lanczos (eigsh) misses repeated eigenvalues, and k separate groups give k of them.
    laplacian = np.sort(1.0 - np.linalg.eigvalsh(normalized.toarray()))
    return {k: float(laplacian[k] - laplacian[k - 1]) for k in ks}


def _kmeans(
    x: np.ndarray, k: int, config: SegmentConfig, init: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """k-means of the rows of ``x``: ``config.n_init`` seeded k-means++ restarts, or, with
    ``init`` (``[k, F]`` centres), one Lloyd run started from them."""
    from sklearn.cluster import KMeans

    if init is None:
        km = KMeans(n_clusters=k, n_init=config.n_init, random_state=config.seed)
    else:
        km = KMeans(n_clusters=k, init=init, n_init=1, random_state=config.seed)
    km.fit(x)
    return km.labels_.astype(np.int64), km.cluster_centers_


def cluster_users(
    embeddings: np.ndarray,
    config: SegmentConfig | None = None,
    neighbourhood: np.ndarray | None = None,
) -> Segmentation:
    """Segment users by their embeddings ``[U, D]`` (and, when given, their neighbourhood
    vectors ``[U, D']`` from :func:`neighbourhood_vectors`).

    The candidate k are fitted on a seeded sample of ``config.fit_sample`` users (all users
    when fewer); the chosen k is then fitted on all users from the sample's centres."""
    config = config or SegmentConfig()
    emb = np.asarray(embeddings)
    if emb.ndim != 2 or emb.shape[1] == 0:
        raise SegmentError(f"embeddings must be a [users, dim] matrix, got shape {emb.shape}")
    if not np.isfinite(emb).all():
        raise SegmentError("embeddings contain NaN or infinite values")
    x = segment_features(emb, neighbourhood)
    n = len(x)
    ks = [config.k] if config.k is not None else list(range(config.k_min, config.k_max + 1))
    ks = [k for k in ks if k < n]
    if not ks:
        raise SegmentError(f"{n} users are too few for {config.k or config.k_min} segments")
    # The candidates (and their restarts) on a sample; all users when fewer (exactly as before).
    fit_rows = _sample(n, config.fit_sample, config.seed)
    sampled = len(fit_rows) < n
    fit_x = x[fit_rows] if sampled else x
    fits = {k: _kmeans(fit_x, k, config) for k in ks}
    by_k = {
        k: round(_silhouette(fit_x, labels, config.silhouette_sample, config.seed), 4)
        for k, (labels, _) in fits.items()
    }
    gaps: dict[int, float] = {}
    components = 0
    if config.k is not None:
        k, criterion = config.k, "fixed"
    elif config.criterion == "eigengap" and n > max(ks) + 2:
        rows = _sample(n, config.eigengap_sample, config.seed)
        adjacency = knn_graph(x[rows], config.knn)
        components = graph_components(adjacency)
        gaps = {k: round(g, 5) for k, g in eigengaps(x[rows], ks, config.knn, adjacency).items()}
        # c separate groups (c exact zeros, the ideal case) are the segments; else the gap
        k = components if components in ks else max(ks, key=lambda c: (gaps[c], -c))
        criterion = "eigengap"
    else:
        k, criterion = max(ks, key=lambda c: (by_k[c], -c)), "silhouette"
    if sampled:  # the chosen k once on all users, from the sample's centres
        final = _kmeans(x, k, config, init=fits[k][1])
        silhouette = round(_silhouette(x, final[0], config.silhouette_sample, config.seed), 4)
    else:
        final, silhouette = fits[k], by_k[k]
    labels, centres = _order_by_size(*final)
    logger.info(
        "segmented %d users into %d segments (%s%s; candidates fitted on %d users; "
        "silhouette %.3f)",
        n,
        k,
        criterion,
        f", {components} kNN graph components" if components else "",
        len(fit_x),
        silhouette,
    )
    return Segmentation(
        labels=labels,
        scores=membership_scores(x, centres, labels),
        centres=centres,
        k=k,
        criterion=criterion,
        silhouette=float(silhouette),
        silhouette_by_k=by_k,
        eigengap_by_k=gaps,
        neighbourhood=neighbourhood is not None,
        components=components,
        fit_users=len(fit_x),
    )


def _order_by_size(labels: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber segments 0..k-1 by decreasing size (ties by old number): stable names."""
    sizes = np.bincount(labels, minlength=len(centres))
    order = sorted(range(len(centres)), key=lambda c: (-sizes[c], c))
    remap = np.empty(len(centres), dtype=np.int64)
    remap[order] = np.arange(len(centres))
    return remap[labels], centres[order]


#: Users per block of :func:`membership_scores` (a ``[block, k, F]`` float64 difference array:
#: about 100 MB at k = 10, F = 128, whatever the number of users).
SCORE_BLOCK = 10_000


def membership_scores(
    x: np.ndarray, centres: np.ndarray, labels: np.ndarray, block: int = SCORE_BLOCK
) -> np.ndarray:
    """``1 - d_own / d_nearest_other`` per user, clipped to [0, 1] (1.0 with one segment);
    computed ``block`` users at a time, so memory stays bounded at any number of users."""
    if centres.shape[0] < 2:
        return np.ones(len(x))
    labels = np.asarray(labels)
    out = np.empty(len(x))
    for start in range(0, len(x), block):
        rows = slice(start, start + block)
        d = np.linalg.norm(x[rows, None, :] - centres[None, :, :], axis=2)
        own_label = labels[rows]
        index = np.arange(len(d))
        own = d[index, own_label]
        d[index, own_label] = np.inf
        other = d.min(axis=1)
        out[rows] = np.clip(1.0 - own / np.maximum(other, 1e-12), 0.0, 1.0)
    return out


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
