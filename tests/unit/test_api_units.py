"""Unit tests of the API's pieces that need no services: keys, validation, policy bytes,
explanations, caches."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from api.recommender import TtlCache
from api.routes.recommendations import _explain
from api.schemas import EventBatch, EventIn
from graphstore import apikeys
from graphstore.serving import Explanation
from training.config import DDPGConfig
from training.errors import ModelDirError
from training.inference import load_policy_adjuster_bytes
from training.policy import DDPGPolicy


def test_keys_split_hash_and_scopes() -> None:
    stored = apikeys.StoredKey("abc", apikeys.hash_secret("s3cret"), "write", False)
    assert apikeys.split_key("dpgcn_abc_s3cret") == ("abc", "s3cret")
    for bad in ("", "dpgcn_abc", "other_abc_s3cret", "dpgcn__x", "dpgcn_a_b_c"):
        assert apikeys.split_key(bad) is None
    assert apikeys.verify(stored, "s3cret") and not apikeys.verify(stored, "s3cre")
    assert not apikeys.verify(None, "s3cret")
    revoked = apikeys.StoredKey("abc", stored.hash, "admin", True)
    assert not apikeys.verify(revoked, "s3cret")
    assert apikeys.scope_allows("admin", "write") and apikeys.scope_allows("write", "write")
    assert not apikeys.scope_allows("read", "write") and not apikeys.scope_allows("x", "read")
    assert "s3cret" not in stored.hash


def test_event_validation_messages() -> None:
    now = time.time()
    EventIn(id="e1", user_id="u", type="search", query="racing", ts=now)
    EventIn(id="e2", user_id="u", type="click", item_id="i1", query="racing", ts=now)
    cases = [
        ({"type": "search"}, "needs a query"),
        ({"type": "view"}, "needs an item_id"),
        ({"type": "view", "item_id": "i", "query": "q"}, "takes no query"),
        ({"type": "search", "query": "q", "item_id": "i"}, "takes no item_id"),
        ({"type": "view", "item_id": "i", "ts": now + 3 * 86400}, "future"),
        ({"type": "view", "item_id": "i", "ts": float("nan")}, "Unix seconds"),
    ]
    for fields, message in cases:
        with pytest.raises(ValidationError, match=message):
            EventIn.model_validate({"id": "e", "user_id": "u", "ts": now, **fields})
    with pytest.raises(ValidationError):
        EventBatch.model_validate({"events": []})


def test_policy_bytes_round_trip_and_garbage() -> None:
    policy = DDPGPolicy(8, 4, DDPGConfig(), seed=0, alpha=0.5, scale=2.0)
    buf = io.BytesIO()
    torch.save({**policy.state_dict(), "user_history": torch.zeros(3, 2, dtype=torch.long)}, buf)
    adjuster = load_policy_adjuster_bytes(buf.getvalue())
    assert adjuster.alpha == 0.5 and adjuster.scale == 2.0 and adjuster.user_history is not None
    lean = load_policy_adjuster_bytes(buf.getvalue(), with_history=False)
    assert lean.user_history is None
    user = np.ones((1, 4), np.float32)
    items = np.eye(4, dtype=np.float32)
    hist = np.array([[0, 1]])
    expected = policy.act(np.concatenate([user, items[[0, 1]].mean(0, keepdims=True)], 1))
    np.testing.assert_allclose(
        lean.adjust(user, items, hist), user + 0.5 * 2.0 * expected, rtol=1e-5, atol=1e-6
    )
    with pytest.raises(ModelDirError):
        load_policy_adjuster_bytes(b"not a policy")


def test_explanations_prefer_the_users_own_search() -> None:
    e = Explanation(
        "i1", "racing games", "racing games", "race", "i9", "Kart", "CLICKED", "c", None, 0, 3
    )
    assert _explain("i1", e, "policy").kind == "search"
    e2 = Explanation("i1", None, "racing games", "race", "i9", "Kart", "CLICKED", "c", None, 0, 3)
    out = _explain("i1", e2, "policy")
    assert out.kind == "search_term" and out.via == ["racing games", "race", "i1"]
    assert "term 'race'" in out.text
    e3 = Explanation("i1", None, None, None, "i9", "Kart", "CLICKED", "Racing", None, 0, 3)
    text = _explain("i1", e3, "embedding").text
    assert text == "similar to 'Kart' you clicked (same category: Racing)"
    seg = Explanation("i1", None, None, None, "i9", "Kart", "CLICKED", "Racing", "Gamers", 2, 3)
    assert _explain("i1", seg, "policy").text == "2 users in your segment (Gamers) bought it"
    e4 = Explanation("i1", None, None, None, None, None, None, None, None, 0, 3)
    assert _explain("i1", e4, "popular").text == "popular: bought 3 times"
    assert _explain("i1", e4, "embedding").kind == "taste"
    assert _explain("i1", None, "cold_start_features").kind == "similar_users"


def test_ttl_cache_expires_and_bounds() -> None:
    calls: list[int] = []
    cache: TtlCache[int] = TtlCache("t", ttl_s=0.05, size=2)

    def load() -> int:
        calls.append(1)
        return len(calls)

    assert cache.get("a", load) == 1 and cache.get("a", load) == 1
    time.sleep(0.06)
    assert cache.get("a", load) == 2
    cache.get("b", load)
    cache.get("c", load)
    assert "a" not in cache._data and len(cache._data) == 2


# ------------------------------------------------------------------ serving snapshot


def test_block_top_k_is_exact() -> None:
    from api.snapshot import BLOCK, top_k_batch

    rng = np.random.default_rng(3)
    for n in (BLOCK * 40, BLOCK * 40 + 17, 50, 0):
        scores = rng.normal(size=(6, n)).astype(np.float32)
        if n:
            scores[1, : n // 2] = -np.inf  # exclusions
            scores[2, :] = -np.inf
            scores[2, :3] = [1.0, 2.0, 0.5]  # fewer finite scores than k
        for ks in ([1, 10, 10, 100, 3, min(n, 5) or 1], [10] * 6, [3] * 6):
            for row, k, got in zip(scores, ks, top_k_batch(scores, ks), strict=True):
                finite = np.flatnonzero(np.isfinite(row))
                want = finite[np.argsort(-row[finite], kind="stable")][:k]
                assert got.tolist() == want.tolist()


def _snapshot(users: int = 50, items: int = 300, dim: int = 8) -> object:
    from api.snapshot import BLOCK, Snapshot, item_index

    rng = np.random.default_rng(5)
    matrix = rng.normal(size=(items, dim)).astype(np.float32)
    index = item_index("v1", [f"i{j}" for j in range(items)], [None] * items, matrix)
    seen = [rng.choice(items, size=int(rng.integers(0, 6)), replace=False) for _ in range(users)]
    padded = np.zeros((-(-items // BLOCK) * BLOCK, dim), np.float32)
    padded[:items] = matrix
    return Snapshot(
        version="v1",
        items=index,
        padded=padded,
        user_pos={f"u{u}": u for u in range(users)},
        users=rng.normal(size=(users, dim)).astype(np.float32),
        seen_ptr=np.cumsum([0] + [len(s) for s in seen]).astype(np.int64),
        seen_rows=np.concatenate(seen).astype(np.int32),
        started=0.0,
    )


def test_snapshot_batch_scores_like_the_neo4j_path() -> None:
    """A batch scored from the snapshot (policy adjustment, seen items excluded, category
    rows) equals the per-request path of the Recommender on the same vectors."""
    import asyncio

    from api.recommender import LoadedPolicy, Recommender
    from api.snapshot import Changes, Scorer, Snapshot, _Ask

    snap = _snapshot()
    assert isinstance(snap, Snapshot)
    policy = DDPGPolicy(16, 8, DDPGConfig(), seed=0, alpha=0.5, scale=1.0)
    buf = io.BytesIO()
    torch.save(policy.state_dict(), buf)
    adjuster = load_policy_adjuster_bytes(buf.getvalue(), with_history=False)
    reference = Recommender(driver=None)  # type: ignore[arg-type]
    loaded = LoadedPolicy("v1", 4, adjuster)
    category = np.arange(0, 300, 7)
    changes = Changes()
    scorer = Scorer(changes, lambda v: (4, adjuster), lambda index, c: category)
    scorer.snapshot = snap
    loop = asyncio.new_event_loop()
    try:
        asks = [
            _Ask(f"u{u}", k, ex, cat, loop.create_future(), loop)
            for u, k, ex, cat in [
                (0, 10, True, None),
                (1, 5, False, None),
                (2, 7, True, "c"),
                (3, 100, True, None),
                (4, 3, True, None),
            ]
        ]
        changes.mark("u4")  # changed since the load: the Neo4j path answers
        answers = scorer.score(asks)
    finally:
        loop.close()
    assert answers[4] is None
    for ask, answer in zip(asks[:4], answers[:4], strict=True):
        assert answer is not None and answer.strategy == "policy" and answer.policy_version == 4
        row = snap.user_pos[ask.user_id]
        seen = [snap.items.ids[r] for r in snap.seen(row)]
        vec = reference.adjust(snap.users[row], snap.items, loaded, seen)
        want = reference.top_k(
            vec,
            snap.items,
            ask.k,
            frozenset(seen) if ask.exclude_seen else frozenset(),
            category if ask.category else None,
        )
        assert [i for i, _, _ in answer.items] == [i for i, _, _ in want]
        np.testing.assert_allclose(
            [s for _, _, s in answer.items], [s for _, _, s in want], rtol=1e-5, atol=1e-5
        )
    # no policy: plain embeddings
    plain = Scorer(Changes(), lambda v: (None, None), lambda index, c: None)
    plain.snapshot = snap
    loop = asyncio.new_event_loop()
    try:
        (answer,) = plain.score([_Ask("u0", 4, True, None, loop.create_future(), loop)])
    finally:
        loop.close()
    assert answer is not None and answer.strategy == "embedding" and answer.policy_version is None


def test_changes_are_forgotten_only_when_a_later_snapshot_holds_them() -> None:
    from api.snapshot import Changes

    changes = Changes()
    changes.publish(["a", "b", "a"])
    assert changes.changed("a") and changes.changed("b") and not changes.changed("c")
    changes.forget_before(0.0)  # a snapshot loaded before the changes: keep them
    assert changes.changed("a")
    changes.forget_before(time.monotonic() + 1)
    assert not changes.changed("a") and not changes.changed("b")
