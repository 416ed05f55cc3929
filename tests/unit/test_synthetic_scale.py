"""The scale shop's planted truth (``ScaleSpec.affinity``) and its oracle (``scale_oracle``)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import numpy as np
import pytest

from graphstore import model
from graphstore.sources.synthetic_scale import ScaleSpec, generate_scale, scale_oracle

ITEM_RELS = (model.VIEWED, model.CLICKED, model.PURCHASED)


def _draws(spec: ScaleSpec) -> Counter[tuple[int, int]]:
    """Draws per (user, item) over the item interactions (a row's count is its draws)."""
    source = generate_scale(spec)
    out: Counter[tuple[int, int]] = Counter()
    for rel in ITEM_RELS:
        for r in source.interactions[rel]:
            out[(int(r["user"][1:]), int(r["target"][1:]))] += r["count"]
    return out


def _categories(spec: ScaleSpec) -> np.ndarray:
    """Each item's leaf category index, read from the source's rows (``c{d}.{l}``)."""
    cat = np.full(spec.items, -1)
    for r in generate_scale(spec).item_categories:
        dept, leaf = r["category"][1:].split(".")
        cat[int(r["item"][1:])] = int(dept) * 10 + int(leaf)
    return cat


def test_affinity_zero_keeps_the_rows_of_the_generator_without_a_truth() -> None:
    """Digest of the rows taken before the planted truth existed (same spec, same code path
    for every part): affinity 0 must not draw anything more."""
    spec = ScaleSpec(users=700, items=300, rels_per_user=8, block=256, seed=5)
    assert spec.affinity == 0.0
    source = generate_scale(spec)
    parts = {rel: list(source.interactions[rel]) for rel in sorted(source.interactions)}
    parts["users"] = list(source.users)
    parts["items"] = list(source.items)
    parts["ic"] = list(source.item_categories)
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
    assert sum(len(v) for v in parts.values()) == 6422
    assert digest == "a511e94daa7c19a59a40584e106fbeb303fde007c5185a0a1495912292a3e17f"


def test_affinity_must_be_a_share() -> None:
    with pytest.raises(ValueError, match="affinity"):
        generate_scale(ScaleSpec(users=10, items=10, affinity=1.5))


def test_share_of_draws_in_the_favourite_category_is_a_plus_the_rest_by_popularity() -> None:
    a = 0.4
    spec = ScaleSpec(users=3000, items=600, rels_per_user=12, block=500, seed=3, affinity=a)
    _, user, _, item = scale_oracle(spec)
    n_cat = spec.n_categories
    favourite = user[:, :n_cat].argmax(axis=1)
    assert np.allclose(user[np.arange(spec.users), favourite], a)
    cat = _categories(spec)
    pop = item[:, n_cat].astype(np.float64)
    cat_mass = np.bincount(cat, weights=pop, minlength=n_cat)
    draws = _draws(spec)
    n = np.zeros(spec.users)
    inside = np.zeros(spec.users)
    for (u, i), c in draws.items():
        n[u] += c
        inside[u] += c * (cat[i] == favourite[u])
    p = a + (1 - a) * cat_mass[favourite]  # per draw of each user
    expected, sd = float((n * p).sum()), float(np.sqrt((n * p * (1 - p)).sum()))
    assert abs(inside.sum() - expected) < 5 * sd, (inside.sum(), expected, sd)
    # without the truth the share is the categories' popularity alone (far below)
    plain = _draws(ScaleSpec(users=3000, items=600, rels_per_user=12, block=500, seed=3))
    plain_inside = sum(c for (u, i), c in plain.items() if cat[i] == favourite[u])
    assert plain_inside < inside.sum() - 20 * sd


def test_oracle_dot_products_are_the_draw_probabilities() -> None:
    """Empirical p(i|u) of many draws per user agree with ``user · item`` cell by cell."""
    spec = ScaleSpec(
        users=12,
        items=25,
        rels_per_user=24_000,
        n_categories=5,
        block=5,
        seed=11,
        affinity=0.6,
    )
    ids_u, user, ids_i, item = scale_oracle(spec)
    assert ids_u[:2] == ["u0", "u1"] and ids_i[-1] == "i24"
    assert user.shape == (12, 6) and item.shape == (25, 6)
    prob = user.astype(np.float64) @ item.T.astype(np.float64)
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, atol=1e-5)
    counts = np.zeros((12, 25))
    for (u, i), c in _draws(spec).items():
        counts[u, i] += c
    n = counts.sum(axis=1, keepdims=True)
    empirical = counts / n
    sd = np.sqrt(prob * (1 - prob) / n) + 1e-9
    assert np.all(np.abs(empirical - prob) < 5 * sd + 1e-4), np.abs(empirical - prob).max()
    # the direct formula: (1 - a) pop(i) + a [cat(i) = c_u] pop(i) / pop(c_u)
    cat = _categories(spec)
    pop = item[:, 5].astype(np.float64)
    mass = np.bincount(cat, weights=pop, minlength=5)
    for u in (0, 7, 11):
        c_u = int(user[u, :5].argmax())
        direct = 0.4 * pop + 0.6 * (cat == c_u) * pop / mass[c_u]
        np.testing.assert_allclose(prob[u], direct, rtol=1e-5)


def test_oracle_ranks_held_out_items_above_popularity_and_chance() -> None:
    """Leave each user's last item out: the oracle puts it in its top 10 (the user's history
    excluded) far more often than chance, and more often than popularity alone."""
    spec = ScaleSpec(users=800, items=500, rels_per_user=15, block=300, seed=4, affinity=0.5)
    _, user, _, item = scale_oracle(spec)
    n_cat = spec.n_categories
    history: dict[int, list[tuple[float, int]]] = {}
    source = generate_scale(spec)
    for rel in ITEM_RELS:
        for r in source.interactions[rel]:
            history.setdefault(int(r["user"][1:]), []).append((r["ts"], int(r["target"][1:])))
    scores = user @ item.T
    popularity = item[:, n_cat]
    favourite = user[:, :n_cat].argmax(axis=1)
    cat = item[:, :n_cat].argmax(axis=1)
    hits = {"oracle": 0, "popularity": 0}
    tested = favourite_held_out = 0
    for u, events in history.items():
        events.sort()
        held_out = events[-1][1]
        seen = [i for _, i in events[:-1] if i != held_out]
        tested += 1
        favourite_held_out += int(cat[held_out] == favourite[u])
        for name, row in (("oracle", scores[u].copy()), ("popularity", popularity.copy())):
            row[seen] = -np.inf
            hits[name] += int(held_out in np.argsort(-row, kind="stable")[:10])
    chance = 10 / spec.items
    # about a per draw; fewer per distinct pair (repeats of popular favourites merge)
    assert favourite_held_out > 0.3 * tested
    assert hits["oracle"] / tested > 5 * chance
    assert hits["oracle"] > hits["popularity"] + 3 * np.sqrt(hits["popularity"]), hits
