"""The synthetic generator: a shop whose ground truth is known.

* Categories: ``n_parents`` top-level categories, each with ``children_per_parent`` leaves;
  every leaf has its own vocabulary of invented words (the item and query terms).
* Segments: ``n_segments`` planted user segments. A segment likes a few leaf categories
  (Dirichlet weights) and has its own age/gender/occupation profile, so static features carry
  signal, as the paper's fusion layer assumes.
* Preference model (the oracle): ``score(u, i) = <z_u, w_i> + beta * log(popularity_i)``, with
  ``z_u`` the segment centre plus noise and ``w_i`` the item's category centre plus noise in a
  latent space; item popularity is Zipf. Each event draws an item from ``softmax(score / tau)``.
* Sessions: with probability ``p_search`` an event starts with a query made of 1–3 words from
  the item's leaf vocabulary (plus an occasional generic word); the click that follows is a
  ``LED_TO`` edge. Clicked items are purchased with probability ``p_purchase * sigmoid(score)``.
* Drift (optional): a fraction of users switch to another segment half-way through time.
* Sparse/cold mode (optional, :meth:`SyntheticSpec.cold`): power-law activity (a few heavy
  users, most with a handful of events), item appeal that follows the item's category *and*
  terms (every word has a latent vector; an item's latent is its category centre plus the mean
  of its title words' vectors), and a share of new items released at ``release_at`` of the
  time span. Every event falls before the release; then a share ``late_users`` of the users
  with at least 2 distinct items come back once after it, picking among all items (the new
  ones boosted by ``novelty``). So every interaction with a new item is some user's last pair
  (and at least their third, the split's ``min_interactions``), which the leave-one-out split
  holds out: the new items are unseen in training, as in a real catalogue, and each has its
  category and term links.

Everything is deterministic given ``seed``; with the sparse/cold fields at their defaults the
output is the same as before they existed (their random draws come from a second generator).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from graphstore import model
from graphstore.records import GraphSource, Row
from graphstore.sources import text

GENDERS = ("F", "M")
OCCUPATIONS = (
    "student",
    "engineer",
    "artist",
    "teacher",
    "manager",
    "retired",
    "nurse",
    "lawyer",
    "programmer",
    "writer",
    "scientist",
    "other",
)
GENERIC_WORDS = ("best", "cheap", "new", "deal", "gift")
_SYLLABLES = (
    "ka",
    "lo",
    "mi",
    "ra",
    "te",
    "zu",
    "po",
    "ne",
    "vi",
    "sa",
    "do",
    "fe",
    "gu",
    "ha",
    "ji",
    "bo",
    "cy",
    "di",
    "el",
    "fo",
    "ga",
    "hu",
    "in",
    "jo",
    "ku",
    "la",
    "mo",
    "nu",
    "or",
    "pe",
)
DAY = 86400.0
START_TS = 1_700_000_000.0


@dataclass(frozen=True)
class SyntheticSpec:
    users: int = 2000
    items: int = 500
    n_segments: int = 6
    n_parents: int = 4
    children_per_parent: int = 3
    words_per_category: int = 8
    events_per_user: float = 20.0
    p_search: float = 0.5
    p_purchase: float = 0.3
    p_view: float = 0.5
    latent_dim: int = 16
    zipf_a: float = 1.1
    beta: float = 0.5
    tau: float = 0.5
    drift_fraction: float = 0.0
    days: float = 60.0
    seed: int = 0
    #: Power-law activity: events per user ``1 + Lomax(activity_alpha)`` scaled to the mean
    #: ``events_per_user`` (0: Poisson, as by default). Must be > 1 when set.
    activity_alpha: float = 0.0
    #: Weight of the item's title-word vectors in its latent (0: category centre only).
    term_weight: float = 0.0
    #: Spread of the item-specific latent noise (not predictable from category or terms).
    item_noise: float = 0.3
    #: Share of items released late (never picked before ``release_at`` of the time span).
    new_items: float = 0.0
    #: When the new items are released, as a share of ``days``.
    release_at: float = 0.85
    #: Log-boost of new items' scores after their release (new arrivals get attention).
    novelty: float = 1.0
    #: With new items: share of the users with >= 2 distinct items who come back once after
    #: the release (that visit is their last, held-out interaction).
    late_users: float = 0.6

    def __post_init__(self) -> None:
        if self.activity_alpha and self.activity_alpha <= 1.0:
            raise ValueError(f"activity_alpha must be 0 or > 1, got {self.activity_alpha}")
        if not 0.0 <= self.new_items < 1.0:
            raise ValueError(f"new_items must be in [0, 1), got {self.new_items}")
        if not 0.0 < self.release_at < 1.0:
            raise ValueError(f"release_at must be in (0, 1), got {self.release_at}")

    @classmethod
    def cold(cls, **changes: Any) -> SyntheticSpec:
        """The sparse/cold-start mode: power-law activity, appeal from category and terms,
        30% of the items new at the end (``changes`` override any field)."""
        return replace(cls(**COLD_MODE), **changes)


#: Field values of the sparse/cold-start mode (:meth:`SyntheticSpec.cold`).
COLD_MODE: dict[str, Any] = {
    "events_per_user": 6.0,
    "activity_alpha": 1.6,
    "term_weight": 1.0,
    "item_noise": 0.1,
    "new_items": 0.3,
    "release_at": 0.85,
    "novelty": 1.5,
    "late_users": 0.6,
}


#: The generator's modes, as ``--mode`` of ``dpgcn load synthetic`` and ``dpgcn evaluate
#: --dataset synthetic`` names them: ``default`` (:class:`SyntheticSpec`'s defaults) and
#: ``cold`` (:meth:`SyntheticSpec.cold`).
MODES = ("default", "cold")


def spec_for(mode: str, **changes: Any) -> SyntheticSpec:
    """The spec of ``mode`` (one of :data:`MODES`) with ``changes``; a field a caller leaves
    out keeps the mode's value (``events_per_user`` is 20 by default, 6 in the cold mode)."""
    if mode == "default":
        return SyntheticSpec(**changes)
    if mode == "cold":
        return SyntheticSpec.cold(**changes)
    raise ValueError(f"unknown synthetic mode {mode!r}; valid: {', '.join(MODES)}")


@dataclass
class SyntheticTruth:
    """What the generator knows and a model has to find."""

    user_ids: list[str]
    item_ids: list[str]
    segment: np.ndarray  # [U] planted segment (after drift for drifting users)
    segment_before: np.ndarray  # [U] planted segment before drift
    drifting: np.ndarray  # [U] bool
    user_latent: np.ndarray  # [U, d] after drift
    item_latent: np.ndarray  # [I, d]
    log_popularity: np.ndarray  # [I]
    beta: float
    #: [I] bool: items released late (sparse/cold mode); all False by default.
    new_item: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    #: Unix time of the new items' release (``nan`` when there are none).
    release_ts: float = math.nan

    def scores(self) -> np.ndarray:
        """The oracle's preference scores [U, I] (after drift)."""
        return self.user_latent @ self.item_latent.T + self.beta * self.log_popularity

    def oracle_vectors(self) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
        """``(user ids, user vectors, item ids, item vectors)`` whose dot products are
        :meth:`scores`: ``[z_u, 1]`` and ``[w_i, beta * log(popularity_i)]`` (the arguments of
        :func:`graphstore.export_format.write_oracle`)."""
        n_users, n_items = len(self.user_ids), len(self.item_ids)
        user = np.concatenate([self.user_latent, np.ones((n_users, 1))], axis=1)
        bias = (self.beta * self.log_popularity).reshape(n_items, 1)
        item = np.concatenate([self.item_latent, bias], axis=1)
        return self.user_ids, user, self.item_ids, item


def _words(rng: np.random.Generator, n: int, taken: set[str]) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        word = "".join(rng.choice(_SYLLABLES, size=int(rng.integers(2, 4))))
        if word not in taken and word not in GENERIC_WORDS:
            taken.add(word)
            out.append(word)
    return out


def generate(spec: SyntheticSpec) -> tuple[GraphSource, SyntheticTruth]:
    rng = np.random.default_rng(spec.seed)
    extra = np.random.default_rng([spec.seed, 1])  # draws of the sparse/cold mode only
    d = spec.latent_dim
    n_leaf = spec.n_parents * spec.children_per_parent

    # Categories and their vocabularies.
    taken: set[str] = set()
    categories: list[Row] = []
    leaf_ids: list[str] = []
    vocab: list[list[str]] = []
    for p in range(spec.n_parents):
        pid = f"c{p}"
        categories.append({"id": pid, "name": f"Department {p}", "parent": None})
        for c in range(spec.children_per_parent):
            words = _words(rng, spec.words_per_category, taken)
            cid = f"c{p}.{c}"
            categories.append({"id": cid, "name": f"{words[0].title()} {words[1]}", "parent": pid})
            leaf_ids.append(cid)
            vocab.append(words)
    cat_centre = rng.normal(0, 1, (n_leaf, d)) / math.sqrt(d) * 2.0

    # Items: leaf category, latent, Zipf popularity, title from the leaf vocabulary.
    item_ids = [f"i{j}" for j in range(spec.items)]
    item_cat = rng.integers(0, n_leaf, spec.items)
    item_latent = cat_centre[item_cat] + rng.normal(0, 1.0, (spec.items, d)) * (
        spec.item_noise / math.sqrt(d)
    )
    ranks = rng.permutation(spec.items) + 1
    popularity = ranks.astype(np.float64) ** -spec.zipf_a
    log_pop = np.log(popularity / popularity.max())
    items: list[Row] = []
    item_terms: list[Row] = []
    for j in range(spec.items):
        words = list(rng.choice(vocab[item_cat[j]], size=3, replace=False))
        title = " ".join(w.title() for w in words) + f" {j}"
        items.append(
            {"id": item_ids[j], "title": title, "price": round(float(rng.lognormal(3.0, 0.8)), 2)}
        )
        for term in sorted(set(text.terms(title))):
            item_terms.append({"item": item_ids[j], "term": term})
    item_categories = [
        {"item": item_ids[j], "category": leaf_ids[item_cat[j]]} for j in range(spec.items)
    ]
    if spec.term_weight:
        # Appeal follows the terms too: each word has a latent vector, an item adds the mean
        # of its title words' vectors.
        word_vec = {w: extra.normal(0, 1, d) / math.sqrt(d) * 2.0 for words in vocab for w in words}
        for j, row in enumerate(items):
            words = [w.lower() for w in str(row["title"]).split()[:3]]
            item_latent[j] += spec.term_weight * np.mean([word_vec[w] for w in words], axis=0)
    new_item = np.zeros(spec.items, dtype=bool)
    if spec.new_items:
        new_item[extra.permutation(spec.items)[: round(spec.new_items * spec.items)]] = True

    # Segments: liked leaves, latent centre, static-feature profile.
    seg_pref = rng.dirichlet(np.full(n_leaf, 0.3), spec.n_segments)
    seg_centre = seg_pref @ cat_centre * 3.0
    seg_age = rng.uniform(20, 60, spec.n_segments)
    seg_female = rng.uniform(0.15, 0.85, spec.n_segments)
    seg_occ = rng.dirichlet(np.full(len(OCCUPATIONS), 0.5), spec.n_segments)

    user_ids = [f"u{k}" for k in range(spec.users)]
    segment_before = rng.integers(0, spec.n_segments, spec.users)
    drifting = rng.random(spec.users) < spec.drift_fraction
    shift = rng.integers(1, max(spec.n_segments, 2), spec.users)
    segment_after = np.where(drifting, (segment_before + shift) % spec.n_segments, segment_before)
    noise = rng.normal(0, 0.4, (spec.users, d)) / math.sqrt(d)
    latent_before = seg_centre[segment_before] + noise
    latent_after = seg_centre[segment_after] + noise

    users: list[Row] = []
    for k in range(spec.users):
        s = segment_before[k]
        users.append(
            {
                "id": user_ids[k],
                "age": int(np.clip(rng.normal(seg_age[s], 6), 16, 80)),
                "gender": GENDERS[int(rng.random() < seg_female[s])],
                "occupation": OCCUPATIONS[int(rng.choice(len(OCCUPATIONS), p=seg_occ[s]))],
                "consent": True,
            }
        )

    # Events.
    clicks: list[tuple[str, str, float, float]] = []
    purchases: list[tuple[str, str, float, float]] = []
    views: list[tuple[str, str, float, float]] = []
    searches: list[tuple[str, str, float, float]] = []
    led_to: dict[tuple[str, str], int] = {}
    query_text: dict[str, str] = {}
    if spec.activity_alpha:
        heavy = extra.pareto(spec.activity_alpha, spec.users) * (spec.activity_alpha - 1.0)
        cap = 50.0 * spec.events_per_user
        n_events = 1 + np.minimum(heavy * max(spec.events_per_user - 1.0, 0.0), cap).astype(int)
    else:
        n_events = rng.poisson(spec.events_per_user, spec.users) + 1
    horizon = spec.days * DAY
    release = spec.release_at * horizon

    def emit(k: int, ts_off: float, j: int, score_j: float, search: bool = True) -> None:
        """The records of one event: user ``k`` picks item ``j`` at ``ts_off``."""
        ts = START_TS + float(ts_off)
        iid = item_ids[j]
        if rng.random() < spec.p_view:
            views.append((user_ids[k], iid, ts - 30.0, 1.0))
        if search and rng.random() < spec.p_search:
            n_words = int(rng.integers(1, 4))
            words = list(rng.choice(vocab[item_cat[j]], size=n_words, replace=False))
            if rng.random() < 0.2:
                words.insert(0, str(rng.choice(GENERIC_WORDS)))
            raw = " ".join(words)
            qid = text.normalize_query(raw)
            if qid:
                query_text.setdefault(qid, raw)
                searches.append((user_ids[k], qid, ts - 60.0, 1.0))
                led_to[(qid, iid)] = led_to.get((qid, iid), 0) + 1
        clicks.append((user_ids[k], iid, ts, 1.0))
        if rng.random() < spec.p_purchase / (1.0 + math.exp(-score_j)):
            purchases.append((user_ids[k], iid, ts + 120.0, 1.0))

    for k in range(spec.users):
        times = np.sort(rng.uniform(0, horizon, n_events[k]))
        if new_item.any():  # every event before the release (the late visit comes after)
            times *= spec.release_at
        late = times >= horizon / 2
        picked: set[int] = set()
        for phase, latent in ((False, latent_before[k]), (True, latent_after[k])):
            mask = late == phase
            m = int(mask.sum())
            if m == 0:
                continue
            score = item_latent @ latent + spec.beta * log_pop
            if new_item.any():
                picks = _pick_with_release(
                    rng, score, np.zeros(m, dtype=bool), new_item, spec.novelty, spec.tau
                )
            else:
                p = np.exp((score - score.max()) / spec.tau)
                p /= p.sum()
                picks = rng.choice(spec.items, size=m, p=p)
            for ts_off, j in zip(times[mask], picks, strict=True):
                emit(k, float(ts_off), int(j), float(score[j]))
            picked.update(picks.tolist())
        # Sparse/cold mode: a user with at least 2 distinct items comes back once after the
        # release, so that visit is their third or later pair, held out by the split (its
        # item, often new, is unseen in training). No search: no LED_TO link to the new item.
        if new_item.any() and len(picked) >= 2 and extra.random() < spec.late_users:
            score = item_latent @ latent_after[k] + spec.beta * log_pop
            j = int(
                _pick_with_release(rng, score, np.ones(1, bool), new_item, spec.novelty, spec.tau)[
                    0
                ]
            )
            emit(k, float(extra.uniform(release, horizon)), j, float(score[j]), search=False)

    from graphstore.records import aggregate

    queries = [{"id": qid, "text": raw} for qid, raw in sorted(query_text.items())]
    query_terms = [{"query": qid, "term": t} for qid in sorted(query_text) for t in qid.split()]
    all_terms = sorted({r["term"] for r in item_terms} | {r["term"] for r in query_terms})
    source = GraphSource(
        name=f"synthetic(seed={spec.seed}, users={spec.users}, items={spec.items})",
        users=users,
        items=items,
        queries=queries,
        terms=[{"id": t} for t in all_terms],
        categories=categories,
        interactions={
            model.CLICKED: list(aggregate(clicks)),
            model.PURCHASED: list(aggregate(purchases)),
            model.VIEWED: list(aggregate(views)),
            model.SEARCHED: list(aggregate(searches)),
        },
        led_to=[{"query": q, "item": i, "count": c} for (q, i), c in sorted(led_to.items())],
        query_terms=query_terms,
        item_terms=item_terms,
        item_categories=item_categories,
    )
    truth = SyntheticTruth(
        user_ids=user_ids,
        item_ids=item_ids,
        segment=segment_after,
        segment_before=segment_before,
        drifting=drifting,
        user_latent=latent_after,
        item_latent=item_latent,
        log_popularity=log_pop,
        beta=spec.beta,
        new_item=new_item,
        release_ts=START_TS + release if new_item.any() else math.nan,
    )
    return source, truth


def _pick_with_release(
    rng: np.random.Generator,
    score: np.ndarray,
    released: np.ndarray,
    new_item: np.ndarray,
    novelty: float,
    tau: float,
) -> np.ndarray:
    """One item per event: before the release (``released`` False) among the old items only,
    after it among all, the new ones boosted by ``novelty``."""
    picks = np.empty(len(released), dtype=np.int64)
    for after in (False, True):
        rows = np.flatnonzero(released == after)
        if len(rows) == 0:
            continue
        s = score + novelty * new_item if after else np.where(new_item, -np.inf, score)
        p = np.exp((s - s.max()) / tau)
        p /= p.sum()
        picks[rows] = rng.choice(len(score), size=len(rows), p=p)
    return picks
