from __future__ import annotations

import numpy as np

from graphstore import model
from graphstore.synthetic import SyntheticSpec, generate

SPEC = SyntheticSpec(users=120, items=60, events_per_user=8, seed=5)


def test_same_seed_same_graph() -> None:
    a, ta = generate(SPEC)
    b, tb = generate(SPEC)
    assert list(a.users) == list(b.users)
    assert list(a.interactions[model.CLICKED]) == list(b.interactions[model.CLICKED])
    assert np.array_equal(ta.segment, tb.segment)


def test_other_seed_other_graph() -> None:
    a, _ = generate(SPEC)
    b, _ = generate(SyntheticSpec(users=120, items=60, events_per_user=8, seed=6))
    assert list(a.interactions[model.CLICKED]) != list(b.interactions[model.CLICKED])


def test_references_are_consistent() -> None:
    source, truth = generate(SPEC)
    users = {u["id"] for u in source.users}
    items = {i["id"] for i in source.items}
    queries = {q["id"] for q in source.queries}
    terms = {t["id"] for t in source.terms}
    assert len(users) == SPEC.users and len(items) == SPEC.items
    for rel in (model.CLICKED, model.PURCHASED, model.VIEWED):
        for row in source.interactions[rel]:
            assert row["user"] in users and row["target"] in items and row["count"] >= 1
    for row in source.interactions[model.SEARCHED]:
        assert row["target"] in queries
    assert all(r["query"] in queries and r["item"] in items for r in source.led_to)
    assert all(r["term"] in terms for r in source.query_terms)
    assert truth.scores().shape == (SPEC.users, SPEC.items)


def test_clicks_follow_the_planted_preferences() -> None:
    source, truth = generate(SyntheticSpec(users=200, items=80, events_per_user=15, seed=1))
    scores = truth.scores()
    uix = {u: k for k, u in enumerate(truth.user_ids)}
    iix = {i: k for k, i in enumerate(truth.item_ids)}
    clicked = [scores[uix[r["user"]], iix[r["target"]]] for r in source.interactions[model.CLICKED]]
    assert np.mean(clicked) > np.mean(scores) + 0.5 * np.std(scores)


def test_drift_moves_some_users_to_another_segment() -> None:
    _, truth = generate(SyntheticSpec(users=200, items=50, events_per_user=4, drift_fraction=0.3))
    moved = truth.segment != truth.segment_before
    assert np.array_equal(moved, truth.drifting) and 0.15 < moved.mean() < 0.45


def test_scale_source_is_deterministic_reiterable_and_consistent() -> None:
    from graphstore.synthetic import ScaleSpec, generate_scale

    spec = ScaleSpec(users=300, items=50, rels_per_user=6, block=128, seed=2)
    source = generate_scale(spec)
    clicked = list(source.interactions[model.CLICKED])
    assert clicked == list(source.interactions[model.CLICKED])  # iterable twice, same rows
    assert clicked == list(generate_scale(spec).interactions[model.CLICKED])
    users = {u["id"] for u in source.users}
    items = {i["id"] for i in source.items}
    queries = {q["id"] for q in source.queries}
    terms = {t["id"] for t in source.terms}
    assert len(users) == 300 and len(items) == 50
    total = 0
    for rel, rows in source.interactions.items():
        pairs = [(r["user"], r["target"]) for r in rows]
        assert len(pairs) == len(set(pairs)), rel  # aggregated: one row per pair
        targets = queries if rel == model.SEARCHED else items
        assert all(u in users and t in targets for u, t in pairs)
        total += len(pairs)
    assert 0.8 * 300 * 6 < total <= 300 * 6 * 1.2
    assert all(r["term"] in terms for r in source.query_terms)
    assert all(r["term"] in terms and r["item"] in items for r in source.item_terms)
    assert any(u["consent"] is False for u in generate_scale(ScaleSpec(users=5000)).users)
