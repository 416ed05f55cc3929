"""Scale graphs for benchmarks: a large random shop (the ingest, export and scale benchmarks
load it), generated lazily in vectorised blocks, optionally with a planted truth (each user's
favourite category) whose oracle is an exact dot product (:func:`scale_oracle`)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from graphstore import model
from graphstore.records import GraphSource, Row
from graphstore.sources.synthetic import DAY, GENDERS, OCCUPATIONS, START_TS


@dataclass(frozen=True)
class ScaleSpec:
    """A large random shop for benchmarks: ``users`` users with about ``rels_per_user``
    interactions each over ``items`` Zipf-popular items, split into VIEWED / CLICKED /
    PURCHASED / SEARCHED, plus the item, query and category links. Rows are generated in
    blocks of ``block`` users, vectorised, and lazily: iterating a part twice yields the same
    rows, and a 20M-relationship source never sits in memory.

    The planted truth (``affinity`` = a > 0): each user u has a favourite leaf category c_u
    (uniform over the categories that hold items, drawn per block of users), and each item
    interaction (VIEWED, CLICKED, PURCHASED; not SEARCHED) picks, with probability a, an item
    of c_u by its global Zipf popularity restricted to c_u, else an item of the global Zipf
    as without a truth. Every draw of user u thus picks item i with probability

        p(i|u) = (1 - a) pop(i) + a [cat(i) = c_u] pop(i) / pop(c_u)

    (pop(c) the summed popularity of category c's items), an exact dot product of the user
    vector [a onehot(c_u), 1 - a] and the item vector [pop(i) / pop(cat(i)) onehot(cat(i)),
    pop(i)]: the oracle (:func:`scale_oracle`, ``oracle.npz`` of :mod:`training.oracle`).
    Repeated draws of one pair become one row with its ``count``. ``affinity`` = 0 (the
    default) draws nothing more: the rows are those of the generator before the truth
    existed, byte for byte (the benchmarks' graphs stay the same)."""

    users: int = 100_000
    items: int = 20_000
    rels_per_user: float = 20.0
    queries: int = 0  # 0 = items // 2
    n_categories: int = 40
    words: int = 4000
    zipf_a: float = 1.05
    no_consent: float = 0.005
    block: int = 20_000
    seed: int = 0
    affinity: float = 0.0


#: Share of a user's interactions per type (SEARCHED targets queries).
_SCALE_MIX = ((model.VIEWED, 0.40), (model.CLICKED, 0.35), (model.PURCHASED, 0.10))


class _Rows:
    """A re-iterable of rows produced by ``make`` (called anew for every iteration)."""

    def __init__(self, make: Callable[[], Iterator[Row]], length: int | None = None) -> None:
        self._make = make
        self.length = length

    def __iter__(self) -> Iterator[Row]:
        return self._make()


def _zipf_cdf(n: int, a: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    weights = (np.arange(1, n + 1, dtype=np.float64)) ** -a
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    return cdf, rng.permutation(n)  # rank → node index


@dataclass(frozen=True)
class _Shop:
    """What every block of a scale shop shares (drawn once from ``[seed, 0]``)."""

    n_queries: int
    item_cdf: np.ndarray  # cumulative Zipf popularity by rank
    item_rank: np.ndarray  # rank → item
    query_cdf: np.ndarray
    query_rank: np.ndarray
    item_words: np.ndarray
    item_cat: np.ndarray  # item → leaf category
    query_words: np.ndarray
    query_items: np.ndarray


def _shop(spec: ScaleSpec) -> _Shop:
    if spec.users < 1 or spec.items < 1 or spec.rels_per_user <= 0:
        raise ValueError("a scale graph needs users, items and relationships per user")
    if not 0.0 <= spec.affinity <= 1.0:
        raise ValueError(f"ScaleSpec.affinity is {spec.affinity}, expected a share in [0, 1]")
    n_queries = spec.queries or max(spec.items // 2, 1)
    setup = np.random.default_rng([spec.seed, 0])
    item_cdf, item_rank = _zipf_cdf(spec.items, spec.zipf_a, setup)
    query_cdf, query_rank = _zipf_cdf(n_queries, spec.zipf_a, setup)
    return _Shop(
        n_queries=n_queries,
        item_cdf=item_cdf,
        item_rank=item_rank,
        query_cdf=query_cdf,
        query_rank=query_rank,
        item_words=setup.integers(0, spec.words, (spec.items, 3)),
        item_cat=setup.integers(0, spec.n_categories, spec.items),
        query_words=setup.integers(0, spec.words, (n_queries, 2)),
        query_items=setup.integers(0, spec.items, (n_queries, 3)),
    )


class _Truth:
    """The planted favourite categories of :class:`ScaleSpec`: item popularity, the items
    grouped by category (each group in rank order) with their cumulative popularity, and
    each block's favourite categories (drawn from ``[seed, 3, block]``)."""

    def __init__(self, spec: ScaleSpec, shop: _Shop) -> None:
        self.spec = spec
        self.pop = np.empty(spec.items)
        self.pop[shop.item_rank] = np.diff(shop.item_cdf, prepend=0.0)
        rank_of = np.empty(spec.items, dtype=np.int64)
        rank_of[shop.item_rank] = np.arange(spec.items)
        self.cat = shop.item_cat
        self.by_cat = np.lexsort((rank_of, self.cat))  # items by category, then rank
        self.cum = np.cumsum(self.pop[self.by_cat])
        counts = np.bincount(self.cat, minlength=spec.n_categories)
        self.hi = np.cumsum(counts)  # end of each category's group in by_cat
        self.lo = self.hi - counts
        before = np.concatenate([[0.0], self.cum])
        self.mass_lo = before[self.lo]
        self.mass = before[self.hi] - self.mass_lo  # pop(c)
        self.present = np.flatnonzero(counts)  # categories that hold items

    def favourites(self, b: int) -> np.ndarray:
        """The favourite category of each user of block ``b``."""
        lo, hi = b * self.spec.block, min((b + 1) * self.spec.block, self.spec.users)
        rng = np.random.default_rng([self.spec.seed, 3, b])
        return self.present[rng.integers(0, len(self.present), hi - lo)]

    def in_category(self, cats: np.ndarray, uniform: np.ndarray) -> np.ndarray:
        """Items drawn by popularity within ``cats`` (inverse CDF of ``uniform`` in [0, 1))."""
        k = np.searchsorted(self.cum, self.mass_lo[cats] + uniform * self.mass[cats])
        k = np.clip(k, self.lo[cats], self.hi[cats] - 1)  # rounding at a group's ends
        return np.asarray(self.by_cat[k])


def scale_oracle(
    spec: ScaleSpec,
) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """``(user ids, user vectors, item ids, item vectors)`` of ``spec``'s planted truth, whose
    dot products are p(i|u) (see :class:`ScaleSpec`): users ``[a onehot(c_u), 1 - a]``, items
    ``[pop(i) / pop(cat(i)) onehot(cat(i)), pop(i)]``, ids ``u{k}`` / ``i{j}`` as the source
    names them (the arguments of :func:`graphstore.export_format.write_oracle`). With
    ``affinity`` 0 it is the global popularity."""
    truth = _Truth(spec, _shop(spec))
    a, n_cat = spec.affinity, spec.n_categories
    user = np.zeros((spec.users, n_cat + 1), dtype=np.float32)
    user[:, n_cat] = 1.0 - a
    for b in range(-(-spec.users // spec.block)):
        lo = b * spec.block
        fav = truth.favourites(b)
        user[np.arange(lo, lo + len(fav)), fav] = a
    item = np.zeros((spec.items, n_cat + 1), dtype=np.float64)
    item[np.arange(spec.items), truth.cat] = truth.pop / truth.mass[truth.cat]
    item[:, n_cat] = truth.pop
    return (
        [f"u{k}" for k in range(spec.users)],
        user,
        [f"i{j}" for j in range(spec.items)],
        item.astype(np.float32),
    )


def generate_scale(spec: ScaleSpec) -> GraphSource:
    """The benchmark source for ``spec``; see :class:`ScaleSpec`."""
    shop = _shop(spec)
    n_queries = shop.n_queries
    words = [f"w{k}" for k in range(spec.words)]
    item_cdf, item_rank = shop.item_cdf, shop.item_rank
    query_cdf, query_rank = shop.query_cdf, shop.query_rank
    item_words, item_cat = shop.item_words, shop.item_cat
    query_words, query_items = shop.query_words, shop.query_items
    truth = _Truth(spec, shop) if spec.affinity > 0 else None
    n_blocks = -(-spec.users // spec.block)

    def block_pairs(b: int, rel: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(user, target, count, ts) of one block and type, unique per pair, sorted by user."""
        rng = np.random.default_rng([spec.seed, 1, b])
        lo, hi = b * spec.block, min((b + 1) * spec.block, spec.users)
        n = rng.poisson(spec.rels_per_user, hi - lo)
        users = np.repeat(np.arange(lo, hi), n)
        kinds = rng.random(len(users))
        edges = np.cumsum([s for _, s in _SCALE_MIX])
        kind = np.searchsorted(edges, kinds, side="right")  # 0..2 interactions, 3 = SEARCHED
        pick = rng.random(len(users))
        ts = START_TS + rng.uniform(0, 60 * DAY, len(users))
        kinds_in_order = [t for t, _ in _SCALE_MIX]
        order = kinds_in_order.index(rel) if rel in kinds_in_order else len(_SCALE_MIX)
        mask = kind == order
        if rel == model.SEARCHED:
            target = query_rank[np.searchsorted(query_cdf, pick[mask])]
            width = n_queries
        else:
            target = item_rank[np.searchsorted(item_cdf, pick[mask])]
            width = spec.items
            if truth is not None:  # the planted share: from the user's favourite category
                coin = np.random.default_rng([spec.seed, 4, b]).random(len(users))[mask]
                inside = coin < spec.affinity
                fav = truth.favourites(b)[users[mask][inside] - lo]
                target[inside] = truth.in_category(fav, pick[mask][inside])
        key = users[mask].astype(np.int64) * width + target
        uniq, first, count = np.unique(key, return_index=True, return_counts=True)
        return uniq // width, uniq % width, count, ts[mask][first]

    def interactions(rel: str) -> Iterator[Row]:
        prefix = "q" if rel == model.SEARCHED else "i"
        for b in range(n_blocks):
            users, targets, counts, ts = block_pairs(b, rel)
            for u, t, c, when in zip(
                users.tolist(), targets.tolist(), counts.tolist(), ts.tolist(), strict=True
            ):
                yield {
                    "user": f"u{u}",
                    "target": f"{prefix}{t}",
                    "count": c,
                    "ts": when,
                    "weight": float(c),
                }

    def users() -> Iterator[Row]:
        for b in range(n_blocks):
            rng = np.random.default_rng([spec.seed, 2, b])
            lo, hi = b * spec.block, min((b + 1) * spec.block, spec.users)
            ages = rng.integers(16, 80, hi - lo).tolist()
            genders = rng.integers(0, 2, hi - lo).tolist()
            occs = rng.integers(0, len(OCCUPATIONS), hi - lo).tolist()
            consent = (rng.random(hi - lo) >= spec.no_consent).tolist()
            for k in range(hi - lo):
                yield {
                    "id": f"u{lo + k}",
                    "age": ages[k],
                    "gender": GENDERS[genders[k]],
                    "occupation": OCCUPATIONS[occs[k]],
                    "consent": consent[k],
                }

    def used_words() -> list[int]:
        return sorted(set(item_words.ravel().tolist()) | set(query_words.ravel().tolist()))

    def query_word_pairs(q: int) -> list[int]:
        return sorted(set(query_words[q].tolist()))

    categories: list[Row] = [
        {"id": f"c{k // 10}", "name": f"Department {k // 10}", "parent": None}
        for k in range(0, spec.n_categories, 10)
    ] + [
        {"id": f"c{k // 10}.{k % 10}", "name": f"Category {k}", "parent": f"c{k // 10}"}
        for k in range(spec.n_categories)
    ]
    leaf = [f"c{k // 10}.{k % 10}" for k in range(spec.n_categories)]

    return GraphSource(
        name=f"scale(users={spec.users}, items={spec.items}, rels/user={spec.rels_per_user})",
        users=_Rows(users, spec.users),
        items=_Rows(
            lambda: (
                {
                    "id": f"i{j}",
                    "title": " ".join(words[w] for w in item_words[j]) + f" {j}",
                    "price": float(1 + j % 997),
                }
                for j in range(spec.items)
            ),
            spec.items,
        ),
        queries=_Rows(
            lambda: (
                {
                    "id": f"q{q}",
                    "text": " ".join(words[w] for w in query_word_pairs(q)),
                }
                for q in range(n_queries)
            ),
            n_queries,
        ),
        terms=_Rows(lambda: ({"id": words[w]} for w in used_words())),
        categories=categories,
        interactions={
            rel: _Rows(functools.partial(interactions, rel))
            for rel in (model.SEARCHED, model.VIEWED, model.CLICKED, model.PURCHASED)
        },
        led_to=_Rows(
            lambda: (
                {"query": f"q{q}", "item": f"i{j}", "count": 1 + (q + j) % 3}
                for q in range(n_queries)
                for j in sorted(set(query_items[q].tolist()))
            )
        ),
        query_terms=_Rows(
            lambda: (
                {"query": f"q{q}", "term": words[w]}
                for q in range(n_queries)
                for w in query_word_pairs(q)
            )
        ),
        item_terms=_Rows(
            lambda: (
                {"item": f"i{j}", "term": words[w]}
                for j in range(spec.items)
                for w in sorted(set(item_words[j].tolist()))
            )
        ),
        item_categories=_Rows(
            lambda: ({"item": f"i{j}", "category": leaf[item_cat[j]]} for j in range(spec.items))
        ),
    )
