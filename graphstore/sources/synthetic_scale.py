"""Scale graphs for benchmarks: a large random shop with no planted truth (the
ingest, export and scale benchmarks load it), generated lazily in vectorised blocks."""

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
    """A large random shop for benchmarks (no planted truth): ``users`` users with about
    ``rels_per_user`` interactions each over ``items`` Zipf-popular items, split into
    VIEWED / CLICKED / PURCHASED / SEARCHED, plus the item, query and category links.
    Rows are generated in blocks of ``block`` users, vectorised, and lazily: iterating a
    part twice yields the same rows, and a 20M-relationship source never sits in memory."""

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


def generate_scale(spec: ScaleSpec) -> GraphSource:
    """The benchmark source for ``spec``; see :class:`ScaleSpec`."""
    if spec.users < 1 or spec.items < 1 or spec.rels_per_user <= 0:
        raise ValueError("a scale graph needs users, items and relationships per user")
    n_queries = spec.queries or max(spec.items // 2, 1)
    setup = np.random.default_rng([spec.seed, 0])
    words = [f"w{k}" for k in range(spec.words)]
    item_cdf, item_rank = _zipf_cdf(spec.items, spec.zipf_a, setup)
    query_cdf, query_rank = _zipf_cdf(n_queries, spec.zipf_a, setup)
    item_words = setup.integers(0, spec.words, (spec.items, 3))
    item_cat = setup.integers(0, spec.n_categories, spec.items)
    query_words = setup.integers(0, spec.words, (n_queries, 2))
    query_items = setup.integers(0, spec.items, (n_queries, 3))
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
