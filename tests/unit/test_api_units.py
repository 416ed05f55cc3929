"""Unit tests of the API's pieces that need no services: keys, validation, policy bytes,
explanations."""

from __future__ import annotations

import io
import time
from typing import Any

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from api.explain import describe as _explain
from api.schemas import EventBatch, EventIn
from graphstore import apikeys
from graphstore.serving import Explanation
from training.config import PolicyConfig
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
    cases: list[tuple[dict[str, Any], str]] = [
        ({"type": "search"}, "needs a query"),
        ({"type": "view"}, "needs an item_id"),
        ({"type": "view", "item_id": "i", "query": "q"}, "takes no query"),
        ({"type": "search", "query": "q", "item_id": "i"}, "takes no item_id"),
        ({"type": "view", "item_id": "i", "ts": now + 3 * 86400}, "future"),
        ({"type": "view", "item_id": "i", "ts": float("nan")}, "finite number"),
        ({"type": "view", "item_id": "i", "ts": float("inf")}, "finite number"),
        ({"type": "view", "item_id": "i", "ts": 10.0}, "Unix seconds"),
    ]
    for fields, message in cases:
        with pytest.raises(ValidationError, match=message):
            EventIn.model_validate({"id": "e", "user_id": "u", "ts": now, **fields})
    with pytest.raises(ValidationError):
        EventBatch.model_validate({"events": []})


def test_policy_bytes_round_trip_and_garbage() -> None:
    policy = DDPGPolicy(8, 4, PolicyConfig(), seed=0, alpha=0.5, scale=2.0)
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
    assert _explain("i1", e4, "popular").text == "popular: bought by 3 users"
    assert _explain("i1", e4, "embedding").kind == "taste"
    assert _explain("i1", None, "cold_start_features").kind == "similar_users"


# ------------------------------------------------------------------ serving snapshot


def test_block_top_k_is_exact() -> None:
    from api.scoring import top_k_batch
    from api.snapshot import BLOCK

    rng = np.random.default_rng(3)
    for n in (BLOCK * 40, BLOCK * 40 + 17, 50, 0):
        scores = rng.normal(size=(6, n)).astype(np.float32)
        if n:
            scores[1, : n // 2] = -np.inf  # exclusions
            scores[2, :] = -np.inf
            scores[2, :3] = [1.0, 2.0, 0.5]  # fewer finite scores than k
        for ks in ([1, 10, 10, 100, 3, min(n, 5) or 1], [10] * 6, [3] * 6):
            got_all = top_k_batch(np.ascontiguousarray(scores.T), ks)  # item-major
            for row, k, got in zip(scores, ks, got_all, strict=True):
                finite = np.flatnonzero(np.isfinite(row))
                want = finite[np.argsort(-row[finite], kind="stable")][:k]
                assert got.tolist() == want.tolist()


def test_block_maxima_are_each_blocks_largest_score() -> None:
    from api.scoring import block_maxima
    from api.snapshot import BLOCK

    rng = np.random.default_rng(4)
    for batch in (1, 3, 16):
        scores = rng.normal(size=(BLOCK * 9, batch)).astype(np.float32)
        scores[5, 0] = np.inf
        scores[BLOCK : 2 * BLOCK, -1] = -np.inf
        want = scores.reshape(9, BLOCK, batch).max(axis=1)
        assert np.array_equal(block_maxima(scores), want)


def _snapshot(users: int = 50, items: int = 300, dim: int = 8) -> object:
    from api.snapshot import Snapshot, item_index, query_index
    from graphstore.serving import ItemVectors, QueryVectors

    rng = np.random.default_rng(5)
    matrix = rng.normal(size=(items, dim)).astype(np.float32)
    vectors = ItemVectors(
        [f"i{j}" for j in range(items)],
        [f"T{j}" for j in range(items)],
        matrix,
        [(f"c{j % 7}",) for j in range(items)],
        [frozenset({f"t{j % 11}"}) for j in range(items)],
    )
    seen = [rng.choice(items, size=int(rng.integers(0, 6)), replace=False) for _ in range(users)]
    n_seen = sum(len(x) for x in seen)
    return Snapshot(
        version="v1",
        items=item_index("v1", vectors),
        user_pos={f"u{u}": u for u in range(users)},
        users=rng.normal(size=(users, dim)).astype(np.float32),
        seen_ptr=np.cumsum([0] + [len(x) for x in seen]).astype(np.int64),
        seen_rows=np.concatenate(seen).astype(np.int32),
        seen_how=np.zeros(n_seen, np.int8),
        searches=[()] * users,
        segment_of=np.full(users, -1, np.int32),
        segment_ids=[],
        links={},
        segment_buys={},
        started=0.0,
        queries=query_index(
            "v1",
            QueryVectors(
                [f"q{j}" for j in range(90)],
                [
                    None if j % 9 == 0 else f"{('racing', 'puzzle', 'tv')[j % 3]} {j}"
                    for j in range(90)
                ],
                rng.normal(size=(90, dim)).astype(np.float32),
            ),
        ),
    )


def test_seen_of_gathers_each_users_newest_items() -> None:
    """``Snapshot.seen_of`` (no loop over users) equals slicing each user's seen items."""
    from api.snapshot import Snapshot

    snap = _snapshot(users=40)
    assert isinstance(snap, Snapshot)
    rows = np.array([3, 0, 3, 17, 39, 5, 8, 21])
    lengths = {len(snap.seen(int(r))) for r in rows}
    assert 0 in lengths and max(lengths) >= 3  # empty and longer-than-limit users both
    for limit in (None, 1, 2, 10):
        owner, position, item = snap.seen_of(rows, limit)
        for j, r in enumerate(rows):
            mine = owner == j
            order = np.argsort(position[mine])
            assert item[mine][order].tolist() == snap.seen(int(r))[:limit].tolist()
            assert position[mine][order].tolist() == list(range(int(mine.sum())))


def _brute_force(
    matrix: np.ndarray, vec: np.ndarray, k: int, exclude: set[int], rows: np.ndarray | None
) -> list[int]:
    """The reference ranking: every score, a full sort."""
    candidates = np.arange(len(matrix)) if rows is None else rows
    scores = matrix[candidates] @ vec
    keep = np.asarray([c not in exclude for c in candidates], bool)
    order = np.argsort(-scores[keep], kind="stable")
    return candidates[keep][order][:k].tolist()


def test_snapshot_batch_ranks_like_brute_force() -> None:
    """A batch ranked from the snapshot (policy adjustment, seen items excluded, category
    rows) equals brute force on the same adjusted vectors, and a user ranked alone by
    :func:`api.scoring.rank` (the graph path) gets the same answer as in the batch."""
    import asyncio

    from api.changes import Changes
    from api.scoring import Scorer, Want, _Ask, rank, seen_arrays
    from api.snapshot import Snapshot

    snap = _snapshot()
    assert isinstance(snap, Snapshot)
    policy = DDPGPolicy(16, 8, PolicyConfig(), seed=0, alpha=0.5, scale=1.0)
    buf = io.BytesIO()
    torch.save(policy.state_dict(), buf)
    adjuster = load_policy_adjuster_bytes(buf.getvalue(), with_history=False)
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
        changes.mark("u4")  # changed since the load: the graph path answers
        answers = scorer.score(asks)
    finally:
        loop.close()
    assert answers[4] is None
    n_hist = adjuster.state_history
    for ask, answer in zip(asks[:4], answers[:4], strict=True):
        assert answer is not None and answer.strategy == "policy" and answer.policy_version == 4
        row = snap.user_pos[ask.user_id]
        seen = snap.seen(row).tolist()
        hist = np.full((1, n_hist), -1, np.int64)
        recent = seen[:n_hist][::-1]
        if recent:
            hist[0, n_hist - len(recent) :] = recent
        vec = adjuster.adjust(snap.users[row][None], snap.items.matrix, hist)[0]
        rows = category if ask.category else None
        want = _brute_force(
            snap.items.matrix, vec, ask.k, set(seen) if ask.exclude_seen else set(), rows
        )
        assert answer.rows.tolist() == want
        alone = rank(
            snap.items,
            snap.users[row][None],
            [Want(ask.k, ask.exclude_seen, rows)],
            seen_arrays([seen]),
            adjuster,
        )
        assert alone[0][0].tolist() == want
        np.testing.assert_allclose(alone[0][1], answer.scores, rtol=1e-5, atol=1e-5)
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
    from api.changes import Changes

    changes = Changes()
    changes.publish(["a", "b", "a"])
    assert changes.changed("a") and changes.changed("b") and not changes.changed("c")
    changes.forget_before(0.0)  # a snapshot loaded before the changes: keep them
    assert changes.changed("a")
    changes.forget_before(time.monotonic() + 1)
    assert not changes.changed("a") and not changes.changed("b")


# ------------------------------------------------------------------ key cache + fast path


class _KeyStore:
    """Stands in for the graph's API keys: counts table reads, can be taken down."""

    def __init__(self) -> None:
        self.keys = {"k1": apikeys.StoredKey("k1", apikeys.hash_secret("s"), "read", False)}
        self.reads = 0
        self.down = False

    def get_all_keys(self, driver: object, database: str = "neo4j") -> list[object]:
        from graphstore.errors import GraphUnavailableError

        self.reads += 1
        if self.down:
            raise GraphUnavailableError("down")
        return list(self.keys.values())


def test_key_table_decides_without_io_and_reads_at_most_once_per_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Known keys and ids found unknown are decided from memory; requests with unknown ids
    wait for one shared table read, at most one per ``miss_refresh_s`` whatever their
    number; a key created a moment ago works at once (after that read)."""
    import asyncio

    from api.errors import ApiError
    from api.security import KeyCache, admit, check_cached

    store = _KeyStore()
    monkeypatch.setattr(apikeys, "get_all_keys", store.get_all_keys)
    cache = KeyCache(None, "neo4j", refresh_s=60.0, miss_refresh_s=0.3)  # type: ignore[arg-type]
    assert check_cached(cache, "dpgcn_k1_s", "read") is None  # never read: read first
    assert cache.get("k1") is not None and store.reads == 1
    stored = check_cached(cache, "dpgcn_k1_s", "read")
    assert stored is not None and stored.id == "k1"
    for key, status in [("dpgcn_k1_s", 403), ("dpgcn_k1_wrong", 401)]:
        with pytest.raises(ApiError) as e:
            check_cached(cache, key, "write" if status == 403 else "read")
        assert e.value.status == status

    async def flood(ids: range) -> list[int]:
        async def one(n: int) -> int:
            try:
                await admit(cache, f"dpgcn_x{n}_s", "read")
            except ApiError as e:
                return e.status
            return 200

        return await asyncio.gather(*(one(n) for n in ids))

    # 2,000 unknown ids at once, then 2,000 more: reads at most once per interval (a request
    # that arrived after a read began waits for the next one); a new key is admitted
    began = time.monotonic()
    assert asyncio.run(flood(range(2000))) == [401] * 2000
    store.keys["x7000"] = apikeys.StoredKey("x7000", apikeys.hash_secret("s"), "read", False)
    statuses = asyncio.run(flood(range(5000, 7001)))
    elapsed = time.monotonic() - began
    assert statuses == [401] * 2000 + [200]
    assert 3 <= store.reads <= 2 + elapsed / 0.3, (store.reads, elapsed)
    # ids found unknown are remembered: refused at once, no read
    reads = store.reads
    with pytest.raises(ApiError) as e:
        check_cached(cache, "dpgcn_x5_s", "read")
    assert e.value.status == 401 and store.reads == reads


def test_key_table_revocation_bound_and_outage(monkeypatch: pytest.MonkeyPatch) -> None:
    """The background refresh makes a revocation count within ``refresh_s``; while the
    graph is down the last table stays in force and unknown ids cost at most one read per
    interval; a table never read answers 503 (GraphUnavailableError)."""
    from api.errors import ApiError
    from api.security import KeyCache, check_cached
    from graphstore.errors import GraphUnavailableError

    store = _KeyStore()
    monkeypatch.setattr(apikeys, "get_all_keys", store.get_all_keys)
    cache = KeyCache(None, "neo4j", refresh_s=0.2, miss_refresh_s=0.1)  # type: ignore[arg-type]
    cache.start()
    try:
        deadline = time.monotonic() + 5
        while cache.loaded_at is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert check_cached(cache, "dpgcn_k1_s", "read") is not None
        store.keys["k1"] = apikeys.StoredKey("k1", store.keys["k1"].hash, "read", True)
        revoked_at = time.monotonic()
        while True:
            try:
                check_cached(cache, "dpgcn_k1_s", "read")
            except ApiError as e:
                assert e.status == 401
                break
            assert time.monotonic() - revoked_at < 0.2 + 0.15
            time.sleep(0.005)
        # outage: known keys keep working, unknown ids are refused, reads stay bounded
        store.keys["k3"] = apikeys.StoredKey("k3", apikeys.hash_secret("u"), "read", False)
        cache.replace(store.keys.values())
        store.down = True
        reads = store.reads
        began = time.monotonic()
        for n in range(10):
            assert check_cached(cache, "dpgcn_k3_u", "read") is not None
            assert cache.get(f"y{n}") is None
        elapsed = time.monotonic() - began
        # the background refresh (every 0.2 s) plus unknown ids (at most one per 0.1 s)
        assert store.reads - reads <= elapsed / 0.2 + elapsed / 0.1 + 2
    finally:
        cache.stop()
    never = KeyCache(None, "neo4j", refresh_s=60.0)  # type: ignore[arg-type]
    with pytest.raises(GraphUnavailableError):
        never.get("k1")


# ------------------------------------------------------------------ one path, cached lists


def test_one_handler_per_route() -> None:
    """Every method and path has exactly one handler, FastAPI's own route class."""
    from fastapi.routing import APIRoute

    from api.routes import events, health, items, models, recommendations, users

    seen: set[tuple[str, str]] = set()
    routes = [
        r for m in (health, recommendations, items, events, users, models) for r in m.router.routes
    ]
    for route in routes:
        assert type(route) is APIRoute, route
        assert isinstance(route, APIRoute)
        for method in route.methods or ():
            assert (method, route.path) not in seen, (method, route.path)
            seen.add((method, route.path))
    assert ("GET", "/v1/users/{user_id}/recommendations") in seen


def _stub_app(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """The real app over a stub snapshot (``_snapshot``) and a cached read key, no services:
    any Cypher read fails the request."""
    from api import security
    from api.main import create_app
    from api.recommender import Recommender
    from api.security import KeyCache
    from graphstore import serving, writeback

    def no_graph(*args: object, **kwargs: object) -> None:
        raise AssertionError("read the graph")

    for name in ("get_explanations", "get_user_state", "get_item_vectors"):
        monkeypatch.setattr(serving, name, no_graph)
    app = create_app()
    rec = Recommender(None, snapshot=True)  # type: ignore[arg-type]
    assert rec.scorer is not None
    rec.scorer.snapshot = _snapshot()  # type: ignore[assignment]
    rec.scorer.start()
    active = writeback.ActiveModel("v1", "a", 8, "dpgcn", {})
    monkeypatch.setattr(rec, "active", lambda: active)
    rec._active = active  # as read by the refresher: the snapshot is of the active version
    app.state.recommender = rec
    app.state.driver = None
    app.state.redis = None
    keys = KeyCache(None, "neo4j", 60.0)  # type: ignore[arg-type]
    keys.replace([apikeys.StoredKey("r1", apikeys.hash_secret("s"), "read", False)])
    app.state.keys = keys
    monkeypatch.setattr(security.apikeys, "get_all_keys", lambda *a, **k: [])
    return app, rec


def _count(cache: str, result: str) -> float:
    from api import metrics

    return float(metrics.child(metrics.CACHE, cache, result)._value.get())


def test_the_default_request_is_explained_from_memory_and_cached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The README's request (explanations on) reads nothing from Neo4j; the user's top-N list
    and its explanations are computed once, then served from the snapshot's cache (no
    scoring batch) for any k up to N; a change of the user is honoured by the next request."""
    from fastapi.testclient import TestClient

    from api import metrics
    from api.snapshot import Snapshot
    from graphstore import serving

    app, rec = _stub_app(monkeypatch)
    snap: Snapshot = rec.scorer.snapshot
    h = {"X-API-Key": "dpgcn_r1_s"}
    user = next(u for u, r in snap.user_pos.items() if len(snap.seen(r)) >= 3)
    seen = {snap.items.ids[r] for r in snap.seen(snap.user_pos[user])}
    url = f"/v1/users/{user}/recommendations"
    try:
        client = TestClient(app)
        first = client.get(url, headers=h)
        assert first.status_code == 200, first.text
        body = first.json()
        assert body["personalized"] and body["strategy"] == "embedding"
        assert len(body["items"]) == 10 and not seen & {i["item_id"] for i in body["items"]}
        kinds = {i["explanation"]["kind"] for i in body["items"]}
        assert "similar_item" in kinds and kinds <= {"similar_item", "taste"}
        for item in body["items"]:
            e = item["explanation"]
            if e["kind"] == "similar_item":  # the seen item shares the item's category
                assert e["via"][0] in seen and e["via"][1] == f"c{int(item['item_id'][1:]) % 7}"
        batches = metrics.SCORING_BATCH._sum.get()
        hits = _count("toplist", "hit")
        again = client.get(url, params={"k": 5}, headers=h).json()
        plain = client.get(url, params={"explain": "false"}, headers=h).json()
        assert metrics.SCORING_BATCH._sum.get() == batches  # no ranking: the cached list
        assert _count("toplist", "hit") == hits + 2
        assert again["items"] == body["items"][:5]
        assert [i["item_id"] for i in plain["items"]] == [i["item_id"] for i in body["items"]]
        assert all(i["explanation"] is None for i in plain["items"])
        deeper = client.get(url, params={"k": 30}, headers=h).json()
        assert metrics.SCORING_BATCH._sum.get() == batches + 1 and len(deeper["items"]) == 30
        assert deeper["items"][:10] == body["items"]
        # an event of the user: the next request reads the user's state from the graph
        top = body["items"][0]["item_id"]
        state = serving.UserState(
            exists=True,
            consent=True,
            vector=snap.users[snap.user_pos[user]],
            recent=(top, *sorted(seen)),
            how=("CLICKED",) * (len(seen) + 1),
        )
        monkeypatch.setattr(serving, "get_user_state", lambda *a, **k: state)
        rec.changes.mark(user)
        after = client.get(url, headers=h).json()
        assert after["personalized"] and top not in {i["item_id"] for i in after["items"]}
        assert [i["item_id"] for i in after["items"]] == [
            i["item_id"] for i in deeper["items"][1:11]
        ]
        assert {i["explanation"]["kind"] for i in after["items"]} <= {"similar_item", "taste"}
    finally:
        rec.scorer.stop()


def test_cached_lists_are_out_of_the_garbage_collectors_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The cached top-N lists (explained or not) are left untracked by the cyclic garbage
    collector: tens of thousands of them made each of its full passes stop the API for
    hundreds of milliseconds at 1M users (docs/benchmarks-api.md)."""
    import gc

    from fastapi.testclient import TestClient

    from api.snapshot import Snapshot

    app, rec = _stub_app(monkeypatch)
    snap: Snapshot = rec.scorer.snapshot
    h = {"X-API-Key": "dpgcn_r1_s"}
    try:
        client = TestClient(app)
        for n, user in enumerate(list(snap.user_pos)[:12]):
            params = {"explain": "false"} if n % 3 == 0 else {"k": 5 + n}
            got = client.get(f"/v1/users/{user}/recommendations", params=params, headers=h)
            assert got.status_code == 200, got.text
    finally:
        rec.scorer.stop()
    assert len(snap.toplists) == 12
    assert any(said for *_, said in snap.toplists.values())
    # A tuple is let go by a collection that finds the tuples it holds let go already: one
    # pass per level of nesting (four) at worst, when the order of the collector's lists is
    # the reverse of the order of creation.
    for _ in range(4):
        gc.collect()
    assert not [v for v in snap.toplists.values() if gc.is_tracked(v)]


def test_serving_raises_the_collectors_thresholds_and_gives_them_back() -> None:
    import gc

    from api.recommender import GC_THRESHOLDS, Recommender

    before = gc.get_threshold()
    rec = Recommender(None, snapshot=True, refresh_s=60.0)  # type: ignore[arg-type]
    rec.start()
    try:
        assert gc.get_threshold() == GC_THRESHOLDS != before
    finally:
        rec.stop()
    assert gc.get_threshold() == before


def test_query_suggestions_take_the_vector_from_the_snapshot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A user the snapshot holds unchanged: suggestions ranked by cosine between the snapshot's
    vector and its query vectors (no Neo4j read), with ``prefix`` among the queries whose text
    starts with it; once changed (consent off here), the graph's state decides: popular."""
    from fastapi.testclient import TestClient

    from api.snapshot import Snapshot
    from graphstore import serving

    app, rec = _stub_app(monkeypatch)
    snap: Snapshot = rec.scorer.snapshot
    assert snap.queries is not None
    monkeypatch.setattr(serving, "get_popular_queries", lambda *a, **k: [("q2", "tv", 3.0)])
    user = "u7"
    vec = snap.users[snap.user_pos[user]]
    matrix = snap.queries.cosine.unit[: snap.queries.cosine.size]
    cosine = matrix @ (vec / np.linalg.norm(vec))
    url, h = f"/v1/users/{user}/query-suggestions", {"X-API-Key": "dpgcn_r1_s"}
    try:
        client = TestClient(app)
        body = client.get(url, params={"k": 6}, headers=h).json()
        assert body["personalized"] is True and body["model_version"] == "v1"
        want = np.argsort(-cosine, kind="stable")[:6]
        assert [q["query_id"] for q in body["queries"]] == [f"q{r}" for r in want]
        np.testing.assert_allclose(
            [q["score"] for q in body["queries"]], (1 + cosine[want]) / 2, atol=1e-6
        )
        assert body["queries"][0]["text"] == snap.queries.texts[want[0]]
        completed = client.get(url, params={"k": 50, "prefix": " RAC"}, headers=h).json()
        racing = [r for r in range(90) if r % 9 and r % 3 == 0]
        assert completed["prefix"] == "rac"
        assert {q["query_id"] for q in completed["queries"]} == {f"q{r}" for r in racing}
        scores = [q["score"] for q in completed["queries"]]
        assert scores == sorted(scores, reverse=True)
        none = client.get(url, params={"prefix": "zzz"}, headers=h).json()
        assert none["personalized"] is True and none["queries"] == []
        off = serving.UserState(exists=True, consent=False, vector=vec, recent=())
        monkeypatch.setattr(serving, "get_user_state", lambda *a, **k: off)
        rec.changes.mark(user)
        body = client.get(url, headers=h).json()
        assert body["personalized"] is False and body["queries"][0]["query_id"] == "q2"
    finally:
        rec.scorer.stop()


def test_similar_items_are_ranked_from_the_item_matrix(monkeypatch: pytest.MonkeyPatch) -> None:
    """Similar items: exact cosine over the snapshot's item matrix, the item itself left out, no
    vector-index read; an item not in the matrix: 404 when it does not exist, else empty."""
    from fastapi.testclient import TestClient

    from api.snapshot import Snapshot
    from graphstore import serving

    app, rec = _stub_app(monkeypatch)
    monkeypatch.setattr(serving, "get_similar_items", lambda *a, **k: pytest.fail("index read"))
    snap: Snapshot = rec.scorer.snapshot
    matrix = snap.items.matrix / np.linalg.norm(snap.items.matrix, axis=1, keepdims=True)
    cosine = matrix @ matrix[5]
    cosine[5] = -np.inf
    want = np.argsort(-cosine, kind="stable")[:7]
    h = {"X-API-Key": "dpgcn_r1_s"}
    exists = {"i-no-vector"}
    monkeypatch.setattr(serving, "item_exists", lambda driver, i, db="neo4j": i in exists)
    # an item not in the matrix: refreshed_at read again (unchanged here), then the item
    monkeypatch.setattr(serving, "get_model_refreshed_at", lambda *a, **k: None)
    try:
        client = TestClient(app)
        body = client.get("/v1/items/i5/similar", params={"k": 7}, headers=h).json()
        assert body["item_id"] == "i5" and body["model_version"] == "v1"
        assert [i["item_id"] for i in body["items"]] == [f"i{r}" for r in want]
        assert body["items"][0]["title"] == f"T{want[0]}"
        np.testing.assert_allclose(
            [i["score"] for i in body["items"]], (1 + cosine[want]) / 2, atol=1e-6
        )
        assert client.get("/v1/items/nope/similar", headers=h).status_code == 404
        empty = client.get("/v1/items/i-no-vector/similar", headers=h)
        assert empty.status_code == 200 and empty.json()["items"] == []
    finally:
        rec.scorer.stop()


def test_explanations_from_memory_follow_the_graph_querys_preferences() -> None:
    """:func:`api.explain.explain_rows` gives what ``serving/get_explanations`` would: the
    newest search that led to the item, else a search sharing a term, else the segment's
    other buyers, else the newest seen item of a shared category (with how it was seen)."""
    from api.explain import describe, explain_rows
    from api.snapshot import Profile, item_index
    from graphstore.serving import ItemVectors, SearchLinks

    ids = [f"i{j}" for j in range(6)]
    items = item_index(
        "v",
        ItemVectors(
            ids,
            ["A", "B", "C", "D", "E", "F"],
            np.zeros((6, 2), np.float32),
            [("Racing",), ("Racing",), ("Puzzle", "Racing"), ("Puzzle",), (), ("Puzzle",)],
            [frozenset(), frozenset({"race"}), frozenset(), frozenset(), frozenset(), frozenset()],
        ),
    )
    links = {
        "q1": SearchLinks("racing games", frozenset({"i0"}), frozenset({"race"})),
        "q2": SearchLinks("old search", frozenset({"i0", "i1"}), frozenset()),
    }
    buys = {"s1": ("Gamers", {"i2": 3, "i3": 1})}
    profile = Profile(
        seen=[3, 2, 0],
        how=["VIEWED", "PURCHASED", "CLICKED"],
        bought=frozenset({2}),
        searches=["q1", "q2"],
        segment="s1",
    )
    got = explain_rows(items, links, buys, profile, [0, 1, 2, 4, 5])
    said = {i: describe(i, e, "policy") for i, e in got.items()}
    assert said["i0"].kind == "search" and said["i0"].via == ["racing games", "i0"]
    # i1: q1 shares the term 'race' (newer than q2, which led to it: the led search wins)
    assert said["i1"].kind == "search" and said["i1"].via == ["old search", "i1"]
    assert got["i1"].term_query == "racing games" and got["i1"].term == "race"
    # i2: 3 members bought it, the user is one of them
    assert said["i2"].text == "2 users in your segment (Gamers) bought it"
    assert said["i4"].kind == "taste"  # no category, no search, no buyers
    assert said["i5"].kind == "similar_item"
    assert said["i5"].text == "similar to 'D' you viewed (same category: Puzzle)"
    alone = explain_rows(
        items, {}, {}, Profile([0, 2], ["CLICKED", "RATED"], frozenset(), [], None), [1]
    )
    assert describe("i1", alone["i1"], "policy").via == ["i0", "Racing", "i1"]


def test_refreshed_items_keep_the_users_and_drop_the_cache() -> None:
    """New items (``refreshed_at``): the snapshot's users keep their seen items under the new
    rows, the cached lists go; an item gone means reading everything again (None)."""
    from api.snapshot import Snapshot, item_index, with_items
    from graphstore.serving import ItemVectors

    snap = _snapshot(users=10, items=40)
    assert isinstance(snap, Snapshot)
    snap.toplists[("u1", True, None, None)] = object()
    old = snap.items
    order = list(reversed(range(40)))
    vectors = ItemVectors(
        ["new1"] + [old.ids[j] for j in order],
        [None, *(old.titles[j] for j in order)],
        np.concatenate([np.ones((1, 8), np.float32), old.matrix[order]]),
        [()] + [old.categories[j] for j in order],
        [frozenset()] + [old.terms[j] for j in order],
    )
    new = with_items(snap, item_index("v1", vectors), 1234)
    assert new is not None and new.refreshed_at == 1234 and len(new.toplists) == 0
    assert len(new.items.ids) == 41
    for u in range(10):
        assert [new.items.ids[r] for r in new.seen(u)] == [old.ids[r] for r in snap.seen(u)]
    fewer = ItemVectors(
        vectors.ids[:-1],
        vectors.titles[:-1],
        vectors.matrix[:-1],
        vectors.categories[:-1],
        vectors.terms[:-1],
    )
    assert with_items(snap, item_index("v1", fewer), 1235) is None


def test_cached_lists_are_not_trusted_while_the_changes_stream_is_unread() -> None:
    from api.changes import Changes

    class Up:
        def xread(self, *args: object, **kwargs: object) -> object:
            return []

    assert Changes().fresh()  # no Redis: only this process's changes exist
    changes = Changes(Up())
    assert not changes.fresh()  # never read yet
    changes.sync()
    assert changes.fresh()


def test_an_unreadable_changes_stream_is_not_retried_on_every_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Scoring runs on the event loop: after a failed read of the changes stream, batches go
    to the Neo4j path for RETRY_S without waiting on Redis again; then it is read again."""
    from api import changes as changes_module
    from api.changes import Changes

    calls: list[int] = []

    class Down:
        def xread(self, *args: object, **kwargs: object) -> object:
            calls.append(1)
            raise ConnectionError("redis down")

    monkeypatch.setattr(changes_module, "RETRY_S", 0.2)
    changes = Changes(Down())
    for _ in range(3):
        with pytest.raises(ConnectionError):
            changes.sync()
    assert calls == [1]
    time.sleep(0.25)
    with pytest.raises(ConnectionError):
        changes.sync()
    assert calls == [1, 1]
