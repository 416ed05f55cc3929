from __future__ import annotations

import numpy as np

from graphstore import model
from graphstore.sources.synthetic import SyntheticSpec, generate

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
    from graphstore.sources.synthetic_scale import ScaleSpec, generate_scale

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


def test_default_mode_output_is_unchanged() -> None:
    """The sparse/cold fields draw from their own generator: the default graph stays the one
    generated before they existed (digest taken then)."""
    import hashlib
    import json

    source, truth = generate(SPEC)
    rows = [source.interactions[r] for r in (model.CLICKED, model.PURCHASED, model.SEARCHED)]
    digest = hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()
    assert digest == "5f178c582beb4b83255f53dd33bbddca3a69c41be2ba56c8085996a58409f023"
    assert not truth.new_item.any()


def test_cold_mode_new_items_appear_only_in_last_visits() -> None:
    spec = SyntheticSpec.cold(users=600, items=200, seed=3)
    source, truth = generate(spec)
    assert spec.new_items == 0.3 and truth.new_item.sum() == 60
    new = {i for i, flag in zip(truth.item_ids, truth.new_item, strict=True) if flag}
    by_user: dict[str, list[tuple[float, str]]] = {}
    for rel in (model.CLICKED, model.PURCHASED, model.VIEWED):
        for r in source.interactions[rel]:
            by_user.setdefault(r["user"], []).append((r["ts"], r["target"]))
            if r["target"] in new:
                assert r["ts"] >= truth.release_ts - 60.0
    late_new = 0
    for events in by_user.values():
        events.sort()
        last_t, last_item = events[-1]
        # a new item is only ever the user's last item, after at least 2 others
        earlier = {i for t, i in events if i != last_item}
        assert not (earlier & new)
        if last_item in new:
            assert len(earlier) >= 2 and last_t >= truth.release_ts - 60.0
            late_new += 1
    assert late_new > 0.2 * sum(len({i for _, i in e}) >= 3 for e in by_user.values())
    # no search leads to a new item (no LED_TO link from the held-out visit)
    assert not any(r["item"] in new for r in source.led_to)
    # every item, new or old, has its category and its terms
    assert {r["item"] for r in source.item_categories} == set(truth.item_ids)
    assert {r["item"] for r in source.item_terms} == set(truth.item_ids)


def test_cold_mode_activity_is_heavy_tailed_and_appeal_follows_content() -> None:
    source, truth = generate(SyntheticSpec.cold(users=1500, items=150, seed=4))

    def events(rows: list[dict[str, object]]) -> np.ndarray:
        users = [int(str(r["user"])[1:]) for r in rows]
        return np.bincount(users, weights=[float(str(r["count"])) for r in rows], minlength=1500)

    clicks = events(list(source.interactions[model.CLICKED]))
    assert np.median(clicks) <= 4 and clicks.max() >= 15 * np.median(clicks)
    default, _ = generate(SyntheticSpec(users=1500, items=150, seed=4, events_per_user=6))
    d_clicks = events(list(default.interactions[model.CLICKED]))
    assert clicks.max() > 2 * d_clicks.max()
    # Items sharing their category and title words have close latents (appeal follows
    # content; little item-specific noise).
    cat = {r["item"]: r["category"] for r in source.item_categories}
    words: dict[str, set[str]] = {}
    for r in source.item_terms:
        words.setdefault(r["item"], set()).add(r["term"])
    lat = truth.item_latent / np.linalg.norm(truth.item_latent, axis=1, keepdims=True)
    ids = truth.item_ids
    same: list[float] = []
    other: list[float] = []
    for a in range(len(ids)):
        for b in range(a + 1, len(ids)):
            if cat[ids[a]] != cat[ids[b]]:
                continue
            shared = len(words[ids[a]] & words[ids[b]])
            (same if shared >= 2 else other).append(float(lat[a] @ lat[b]))
    assert same and other and np.mean(same) > np.mean(other) + 0.05


def test_cold_mode_rejects_bad_settings() -> None:
    import pytest

    with pytest.raises(ValueError, match="activity_alpha"):
        SyntheticSpec.cold(activity_alpha=0.8)
    with pytest.raises(ValueError, match="new_items"):
        SyntheticSpec(new_items=1.0)
