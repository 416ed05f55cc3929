"""Unit tests of the API's pieces that need no services: keys, validation, policy bytes,
explanations, caches."""

from __future__ import annotations

import io
import time
from dataclasses import replace
from typing import Any

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
    from api.snapshot import Snapshot, item_columns, item_index

    rng = np.random.default_rng(5)
    matrix = rng.normal(size=(items, dim)).astype(np.float32)
    index = item_index("v1", [f"i{j}" for j in range(items)], [None] * items, matrix)
    seen = [rng.choice(items, size=int(rng.integers(0, 6)), replace=False) for _ in range(users)]
    return Snapshot(
        version="v1",
        items=index,
        columns=item_columns(matrix),
        user_pos={f"u{u}": u for u in range(users)},
        users=rng.normal(size=(users, dim)).astype(np.float32),
        seen_ptr=np.cumsum([0] + [len(s) for s in seen]).astype(np.int64),
        seen_rows=np.concatenate(seen).astype(np.int32),
        started=0.0,
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


def test_fast_params_accept_only_plainly_valid_queries() -> None:
    from api.routes.recommendations import _fast_params

    assert _fast_params(b"") == (10, True, None, True)
    assert _fast_params(b"k=7&explain=false&exclude_seen=0&category=c1&other=x") == (
        7,
        False,
        "c1",
        False,
    )
    assert _fast_params(b"k=100&explain=TRUE") == (100, True, None, True)
    for refused in (
        b"k=0",
        b"k=101",
        b"k=010",
        b"k=ten",
        b"k=",
        b"k=5&k=6",
        b"explain=yes",
        b"exclude_seen=",
        b"category=",
        b"category=" + b"x" * 129,
        b"age=30",
        b"gender=F",
        b"occupation=x",
    ):
        assert _fast_params(refused) is None, refused


def _stub_app(monkeypatch: pytest.MonkeyPatch) -> tuple[object, list[object], list[object]]:
    """The real app with a stub snapshot and a cached read key (no services); returns the app
    and the lists the route's fast path's and the direct lane's results are recorded in."""
    from api import security
    from api.main import create_app
    from api.recommender import Recommender
    from api.routes import recommendations
    from api.security import KeyCache

    app = create_app()
    rec = Recommender(None, snapshot=True)  # type: ignore[arg-type]
    assert rec.scorer is not None
    rec.scorer.snapshot = _snapshot()  # type: ignore[assignment]
    rec.scorer.start()
    app.state.recommender = rec
    app.state.driver = None
    app.state.redis = None
    keys = KeyCache(None, "neo4j", 60.0)  # type: ignore[arg-type]
    keys.replace(
        [
            apikeys.StoredKey("r1", apikeys.hash_secret("s"), "read", False),
            apikeys.StoredKey("x1", apikeys.hash_secret("s"), "read", True),
        ]
    )
    app.state.keys = keys
    fast_results: list[object] = []
    real_fast = recommendations._fast

    async def spy(request: object) -> object:
        out = await real_fast(request)  # type: ignore[arg-type]
        fast_results.append(out)
        return out

    direct_results: list[object] = []
    real_direct = recommendations.answer_direct

    async def direct_spy(app: object, scope: object) -> object:
        out = await real_direct(app, scope)  # type: ignore[arg-type]
        direct_results.append(out)
        return out

    monkeypatch.setattr(recommendations, "_fast", spy)
    monkeypatch.setattr(recommendations, "answer_direct", direct_spy)
    monkeypatch.setattr(security.apikeys, "get_all_keys", lambda *a, **k: [])
    return app, fast_results, direct_results


def _headers(response: object) -> list[tuple[str, str]]:
    """Response headers but the per-request ones (request id, date)."""
    return [
        (k, v)
        for k, v in response.headers.multi_items()  # type: ignore[attr-defined]
        if k not in ("x-request-id", "date")
    ]


def test_fast_path_answers_like_the_validated_route(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same request answered by the direct lane (before FastAPI), by the route's fast
    path (direct lane off) and by FastAPI's validated route (forced by a spelling only
    pydantic accepts) gives the same status, body bytes and headers, and counts in the
    route's metrics either way."""
    from fastapi.testclient import TestClient

    from api import metrics
    from api.routes.recommendations import ROUTE

    app, fast, direct = _stub_app(monkeypatch)
    client = TestClient(app)  # type: ignore[arg-type]
    h = {"X-API-Key": "dpgcn_r1_s"}
    ok = metrics.child(metrics.REQUESTS, "GET", ROUTE, "200")
    try:
        for user, params, same in [
            ("u3", "k=10&explain=false", "k=010&explain=false"),
            ("u4", "k=5&explain=false&exclude_seen=false", "k=5&explain=no&exclude_seen=off"),
            ("u0", "explain=0&k=100", "explain=f&k=100"),
        ]:
            url = f"/v1/users/{user}/recommendations?"
            fast.clear()
            direct.clear()
            before = ok._value.get()
            a = client.get(url + params, headers=h)
            assert len(direct) == 1 and isinstance(direct[0], bytes), "no direct answer"
            assert fast == [], "the direct lane's request reached the route"
            assert ok._value.get() == before + 1
            app.direct = False  # type: ignore[attr-defined]
            try:
                fast.clear()
                direct.clear()
                b = client.get(url + params, headers=h)
                assert direct == [] and len(fast) == 1 and fast[0] is not None
            finally:
                app.direct = True  # type: ignore[attr-defined]
            fast.clear()
            direct.clear()
            c = client.get(url + same, headers=h)
            assert direct == [None] and fast == [None], "the validated route did not answer"
            assert a.status_code == b.status_code == c.status_code == 200, (a.text, c.text)
            assert a.content == b.content == c.content
            assert _headers(a) == _headers(b) == _headers(c)
            assert all("x-request-id" in r.headers for r in (a, b, c))
            body = a.json()
            k = int(params.split("k=")[1].split("&")[0])
            assert body["personalized"] and len(body["items"]) == k
        # not for the direct lane: explanations, other paths, methods and spellings
        for path in [
            "/v1/users/u1/recommendations",  # explain defaults to true
            "/v1/users/u1/recommendations/?explain=false",
            "/v1/users/u1/query-suggestions?explain=false",
        ]:
            direct.clear()
            # (explanations need Neo4j, which the stub lacks: a 500 here is expected)
            TestClient(app, raise_server_exceptions=False).get(path, headers=h)  # type: ignore[arg-type]
            assert not direct or direct[0] is None, path  # (a redirect may follow)
        direct.clear()
        assert (
            client.post("/v1/users/u1/recommendations?explain=false", headers=h).status_code == 405
        )
        assert direct == [None]
        # refused by both fast paths, answered (with errors) by the validated route
        for path, headers, status in [
            ("/v1/users/u1/recommendations?k=0", h, 422),
            ("/v1/users/u1/recommendations?k=101", h, 422),
            ("/v1/users/u1/recommendations?age=500", h, 422),
            ("/v1/users/u1/recommendations?explain=false", {}, 401),
            ("/v1/users/u1/recommendations?explain=false", {"X-API-Key": "dpgcn_x1_s"}, 401),
            ("/v1/users/u1/recommendations?explain=false", {"X-API-Key": "dpgcn_r1_bad"}, 401),
            ("/v1/users/u1/recommendations?explain=false", {"X-API-Key": "dpgcn_nope_s"}, 401),
        ]:
            direct.clear()
            r = client.get(path, headers=headers)
            assert r.status_code == status, (path, r.text)
            assert direct == [None], path
    finally:
        app.state.recommender.scorer.stop()  # type: ignore[attr-defined]


def test_a_failing_direct_lane_leaves_the_request_to_the_full_stack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fastapi.testclient import TestClient

    from api.routes import recommendations

    app, fast, _ = _stub_app(monkeypatch)

    async def broken(app: object, scope: object) -> bytes:
        raise RuntimeError("bug")

    monkeypatch.setattr(recommendations, "answer_direct", broken)
    try:
        r = TestClient(app).get(  # type: ignore[arg-type]
            "/v1/users/u3/recommendations?k=4&explain=false", headers={"X-API-Key": "dpgcn_r1_s"}
        )
        assert r.status_code == 200 and len(r.json()["items"]) == 4
        assert len(fast) == 1 and fast[0] is not None  # the route's fast path answered
    finally:
        app.state.recommender.scorer.stop()  # type: ignore[attr-defined]


def test_direct_body_is_the_models_json() -> None:
    """The direct lane's body equals pydantic's ``model_dump_json`` of the response model for
    awkward values (floats of every size, unicode, quotes, missing titles, no items)."""
    from api.routes.recommendations import _answer, _json, direct_body
    from api.schemas import Strategy
    from api.snapshot import Answer, Snapshot, item_columns, item_index

    rng = np.random.default_rng(3)
    scores = [0.0, -0.0, 1e-7, 1.5e300, -2.5e-300, 0.1, 1 / 3, 123456789.125, 1e-5, 1e16]
    scores += [float(x) for x in rng.normal(0, 10, 30)]
    scores += [float(np.float32(x)) for x in rng.normal(0, 1, 30)]
    titles = [None, 'Straße "7" — 東京', "tab\there", "", "\u2028", "a\\b", "<>&'"]
    n = len(scores)
    ids = [f"i{j}é" for j in range(n)]
    index = item_index("v", ids, [titles[j % len(titles)] for j in range(n)], np.zeros((n, 2)))
    empty = np.zeros(0, np.int32)
    snap = Snapshot("v", index, item_columns(index.matrix), {}, np.zeros((0, 2)), empty, empty, 0)
    rows = [int(r) for r in rng.permutation(n)]
    cases: list[tuple[str, Strategy, int | None, str | None, list[int]]] = [
        ("v1", "policy", 3, None, rows),
        ("v2-é", "embedding", None, 'c"1', rows[:5]),
        ("v3", "embedding", 0, "c", []),
    ]
    for version, strategy, policy, category, picked in cases:
        answer = Answer(
            strategy, policy, picked, [scores[r] for r in picked], replace(snap, version=version)
        )
        items = answer.items
        assert [i for i, _, _ in items] == [ids[r] for r in picked]
        want = _json(_answer("u\u00e9", version, strategy, policy, category, items, None)).body
        assert direct_body("u\u00e9", answer, strategy, category) == want


def test_an_unreadable_changes_stream_is_not_retried_on_every_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Scoring runs on the event loop: after a failed read of the changes stream, batches go
    to the Neo4j path for RETRY_S without waiting on Redis again; then it is read again."""
    from api import snapshot
    from api.snapshot import Changes

    calls: list[int] = []

    class Down:
        def xread(self, *args: object, **kwargs: object) -> object:
            calls.append(1)
            raise ConnectionError("redis down")

    monkeypatch.setattr(snapshot, "RETRY_S", 0.2)
    changes = Changes(Down())
    for _ in range(3):
        with pytest.raises(ConnectionError):
            changes.sync()
    assert calls == [1]
    time.sleep(0.25)
    with pytest.raises(ConnectionError):
        changes.sync()
    assert calls == [1, 1]
