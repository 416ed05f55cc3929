"""The API's in-memory serving snapshot against the real Neo4j and Redis with a trained model:
the same answers as the Neo4j path, posted events / consent / erasure honoured by the next
request (from this process and, through Redis, from another), and a version switch that
never mixes versions within an answer."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient
from neo4j import Driver

from api.changes import STALE_S, Changes
from api.recommender import Recommender
from dpgcn import services
from dpgcn.settings import get_settings
from graphstore import apikeys, serving, writeback
from tests.integration.api_keys import api_client_fixture, api_keys_fixture, auth  # noqa: F401

pytestmark = pytest.mark.integration

Client = TestClient
Keys = dict[str, str]


def _recommender(client: Client) -> Recommender:
    return client.app.state.recommender  # type: ignore[attr-defined,no-any-return]


def _wait_snapshot(client: Client, version: str, timeout: float = 60.0) -> None:
    rec = _recommender(client)
    rec.invalidate()
    deadline = time.monotonic() + timeout
    while rec.snapshot is None or rec.snapshot.version != version:
        assert time.monotonic() < deadline, "the snapshot was not loaded"
        time.sleep(0.1)


def _get(client: Client, keys: Keys, user: str, **params: Any) -> dict[str, Any]:
    r = client.get(
        f"/v1/users/{user}/recommendations",
        params={"k": 10, "explain": "false", **params},
        headers=auth(keys["read"]),
    )
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _no_graph_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the snapshot path read the user or explanations from Neo4j")

    monkeypatch.setattr(serving, "get_user_state", fail)
    monkeypatch.setattr(serving, "get_explanations", fail)


def test_snapshot_answers_like_the_graph_without_reading_the_user(
    driver: Driver,
    api_client: Client,
    api_keys: Keys,
    trained_model: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rec = _recommender(api_client)
    _wait_snapshot(api_client, trained_model)
    users = ("u1", "u2", "u3", "u40")
    category = driver.execute_query(
        "MATCH (c:Category)<-[:IN_CATEGORY]-(i:Item) WITH c, count(i) AS n "
        "ORDER BY n DESC, c.id LIMIT 1 RETURN c.id AS id"
    ).records[0]["id"]
    members = {
        r["id"]
        for r in driver.execute_query(
            "MATCH (i:Item)-[:IN_CATEGORY]->(:Category)-[:SUBCATEGORY_OF*0..]->"
            "(:Category {id: $c}) RETURN i.id AS id",
            c=category,
        ).records
    }
    with monkeypatch.context() as m:
        _no_graph_reads(m)
        fast = {u: _get(api_client, api_keys, u) for u in users}
        in_category = _get(api_client, api_keys, "u1", category=category, k=3)
    assert in_category["items"] and {i["item_id"] for i in in_category["items"]} <= members
    snap, rec.scorer.snapshot = rec.snapshot, None  # type: ignore[union-attr]
    try:
        slow = {u: _get(api_client, api_keys, u) for u in users}
    finally:
        rec.scorer.snapshot = snap  # type: ignore[union-attr]
    for u in users:
        assert fast[u]["strategy"] in ("policy", "embedding") and fast[u]["personalized"]
        for key in ("model_version", "strategy", "policy_version", "personalized"):
            assert fast[u][key] == slow[u][key], (u, key)
        assert [i["item_id"] for i in fast[u]["items"]] == [i["item_id"] for i in slow[u]["items"]]
        np.testing.assert_allclose(
            [i["score"] for i in fast[u]["items"]],
            [i["score"] for i in slow[u]["items"]],
            rtol=1e-4,
            atol=1e-4,
        )
    # the README's request (explanations on): explained from memory, no Neo4j read
    with monkeypatch.context() as m:
        _no_graph_reads(m)
        explained = _get(api_client, api_keys, "u1", explain="true")
    assert [i["item_id"] for i in explained["items"]] == [i["item_id"] for i in fast["u1"]["items"]]
    kinds = {i["explanation"]["kind"] for i in explained["items"]}
    assert kinds <= {"search", "search_term", "segment", "similar_item", "taste"}
    assert 'dpgcn_api_cache_total{cache="snapshot",result="hit"}' in api_client.get("/metrics").text


def test_posted_event_consent_and_erase_are_honoured_by_the_next_request(
    driver: Driver, api_client: Client, api_keys: Keys, trained_model: str
) -> None:
    _wait_snapshot(api_client, trained_model)
    write = auth(api_keys["write"])
    user = "u30"
    before = _get(api_client, api_keys, user)
    top = before["items"][0]["item_id"]
    event = {"id": uuid.uuid4().hex, "user_id": user, "type": "view", "item_id": top}
    posted = api_client.post(
        "/v1/events", json={"events": [{**event, "ts": time.time()}]}, headers=write
    )
    assert posted.status_code == 200, posted.text
    after = _get(api_client, api_keys, user)
    assert top not in {i["item_id"] for i in after["items"]}
    assert after["personalized"] is True
    # consent off: popular at once; on again: personalized at once
    api_client.put(f"/v1/users/{user}/consent", json={"personalization": False}, headers=write)
    off = _get(api_client, api_keys, user)
    assert off["personalized"] is False and off["strategy"] == "popular"
    api_client.put(f"/v1/users/{user}/consent", json={"personalization": True}, headers=write)
    assert _get(api_client, api_keys, user)["personalized"] is True
    # erasure: popular at once, and the snapshot never serves the user again
    erased_user = "u31"
    assert _get(api_client, api_keys, erased_user)["personalized"] is True
    assert api_client.delete(f"/v1/users/{erased_user}", headers=write).status_code == 200
    gone = _get(api_client, api_keys, erased_user)
    assert gone["personalized"] is False and gone["strategy"] == "popular"
    # a reloaded snapshot (begun after the changes) holds the new state itself
    rec = _recommender(api_client)
    rec.scorer.snapshot = None  # type: ignore[union-attr]
    _wait_snapshot(api_client, trained_model)
    assert not rec.changes.changed(user)
    assert erased_user not in rec.snapshot.user_pos  # type: ignore[union-attr]
    assert top not in {i["item_id"] for i in _get(api_client, api_keys, user)["items"]}


def test_changes_published_by_another_process_are_honoured(
    driver: Driver, api_client: Client, api_keys: Keys, trained_model: str
) -> None:
    _wait_snapshot(api_client, trained_model)
    user = "u32"
    top = _get(api_client, api_keys, user)["items"][0]["item_id"]
    # another API process stores a view of the top item ...
    driver.execute_query(
        "MATCH (u:User {id: $u}), (i:Item {id: $i}) "
        "CREATE (u)-[:VIEWED {count: 1, ts: $ts, weight: 1.0}]->(i)",
        u=user,
        i=top,
        ts=time.time(),
    )
    try:
        # ... and until it tells the others, this process's snapshot still serves the old state
        assert _get(api_client, api_keys, user)["items"][0]["item_id"] == top
        client = redis.Redis.from_url(services.redis_url(get_settings()))
        try:
            Changes(client).publish([user])
        finally:
            client.close()
        published = time.monotonic()
        # the user's cached list is dropped within the stated bound (STALE_S)
        while top in {i["item_id"] for i in _get(api_client, api_keys, user)["items"]}:
            assert time.monotonic() - published < STALE_S, "the change was not honoured"
            time.sleep(0.02)
    finally:
        driver.execute_query(
            "MATCH (:User {id: $u})-[r:VIEWED]->(:Item {id: $i}) DELETE r", u=user, i=top
        )


def test_an_unreadable_changes_stream_means_the_graph_answers(
    api_client: Client, api_keys: Keys, trained_model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _wait_snapshot(api_client, trained_model)
    changes = _recommender(api_client).changes
    calls: list[int] = []
    real = serving.get_user_state

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(serving, "get_user_state", counted)
    monkeypatch.setattr(changes, "redis", redis.Redis(port=1, socket_connect_timeout=0.2))
    body = _get(api_client, api_keys, "u33")
    assert body["personalized"] is True and calls == [1]


def _version_answers(
    users: dict[str, np.ndarray], items: np.ndarray, item_ids: list[str], seen: set[str]
) -> Callable[[dict[str, Any]], bool]:
    """Whether an answer is exactly the plain-embedding top 10 of the new version."""
    scores = items @ users["u1"]
    order = [j for j in np.argsort(-scores) if item_ids[j] not in seen][:10]

    def check(body: dict[str, Any]) -> bool:
        ids = [i["item_id"] for i in body["items"]]
        got = [i["score"] for i in body["items"]]
        return ids == [item_ids[j] for j in order] and bool(
            np.allclose(got, scores[order], rtol=1e-4, atol=1e-4)
        )

    return check


def test_a_version_switch_never_mixes_versions(
    driver: Driver, api_client: Client, api_keys: Keys, trained_model: str
) -> None:
    _wait_snapshot(api_client, trained_model)
    active = writeback.get_active(driver)
    assert active is not None
    old = _get(api_client, api_keys, "u1")
    user_ids = [r["id"] for r in driver.execute_query("MATCH (u:User) RETURN u.id AS id").records]
    item_ids = [r["id"] for r in driver.execute_query("MATCH (i:Item) RETURN i.id AS id").records]
    rng = np.random.default_rng(11)
    user_vecs = rng.normal(size=(len(user_ids), active.dim)).astype(np.float32)
    item_vecs = rng.normal(size=(len(item_ids), active.dim)).astype(np.float32)
    other = f"{trained_model}-switch"
    writeback.begin_version(driver, other, active.dim, "random")
    writeback.write_embeddings(driver, other, "User", user_ids, user_vecs)
    writeback.write_embeddings(driver, other, "Item", item_ids, item_vecs)
    writeback.complete_version(driver, other, {"User": len(user_ids)}, {})
    seen = {
        r["id"]
        for r in driver.execute_query(
            "MATCH (:User {id: 'u1'})-[:VIEWED|CLICKED|PURCHASED|RATED]->(i) RETURN i.id AS id"
        ).records
    }
    is_new = _version_answers({"u1": user_vecs[user_ids.index("u1")]}, item_vecs, item_ids, seen)
    admin = auth(api_keys["admin"])
    answers: list[dict[str, Any]] = []
    try:
        assert api_client.post(f"/v1/models/{other}/activate", headers=admin).status_code == 200
        deadline = time.monotonic() + 60
        while not answers or answers[-1]["model_version"] != other:
            assert time.monotonic() < deadline
            answers.append(_get(api_client, api_keys, "u1"))
        _wait_snapshot(api_client, other)
        answers.append(_get(api_client, api_keys, "u1"))
    finally:
        back = api_client.post(f"/v1/models/{trained_model}/activate", headers=admin)
        assert back.status_code == 200
    for body in answers:
        if body["model_version"] == other:
            assert body["strategy"] == "embedding" and body["policy_version"] is None
            assert is_new(body), body
        else:
            assert body["model_version"] == trained_model
            if body["policy_version"] == old["policy_version"]:  # no online update meanwhile
                ids = [i["item_id"] for i in body["items"]]
                assert ids == [i["item_id"] for i in old["items"]]
    assert _recommender(api_client).snapshot.version == other  # type: ignore[union-attr]
    _wait_snapshot(api_client, trained_model)
    again = _get(api_client, api_keys, "u1")
    assert again["model_version"] == trained_model and again["strategy"] == old["strategy"]


def test_a_revoked_key_stops_working_within_the_key_cache_time(
    driver: Driver, api_client: Client, trained_model: str
) -> None:
    """The documented bound (``DPGCN_API_KEY_CACHE_S``): the API re-reads its key table that
    often, so a key revoked in the graph is refused at most that long (plus one read) after
    the revocation, on the fast path too; a key created a moment ago works at once."""
    from api.security import KeyCache

    _wait_snapshot(api_client, trained_model)
    keys: KeyCache = api_client.app.state.keys  # type: ignore[attr-defined]
    period = 1.0
    old_period = keys.refresh_s
    keys.set_refresh_s(period)
    try:
        time.sleep(keys.miss_refresh_s)  # (a table read on a miss is due again)
        key_id, key = apikeys.create_key(driver, "read", name="revocation-test")
        path = "/v1/users/u1/recommendations?k=5&explain=false"
        assert api_client.get(path, headers=auth(key)).status_code == 200
        apikeys.revoke_key(driver, key_id)
        revoked = time.monotonic()
        seen: list[tuple[float, int]] = []
        while time.monotonic() - revoked < period + 2.0:
            status = api_client.get(path, headers=auth(key)).status_code
            seen.append((round(time.monotonic() - revoked, 3), status))
            if status == 401:
                break
            assert status == 200, seen
            time.sleep(0.02)
        assert seen[-1][1] == 401, seen
        assert seen[-1][0] <= period + 0.3, seen
        assert api_client.get(path, headers=auth(key)).status_code == 401
    finally:
        keys.set_refresh_s(old_period)


def test_new_items_of_the_active_version_are_picked_up(
    driver: Driver, api_client: Client, api_keys: Keys, trained_model: str
) -> None:
    """Vectors written for an item created after activation, then ``refreshed_at`` set on the
    active Model node: within the refresh interval (plus the item read) the item is
    recommended and has similar items; the users' seen items and cached lists stay right."""
    _wait_snapshot(api_client, trained_model)
    rec = _recommender(api_client)
    active = writeback.get_active(driver)
    assert active is not None and active.version == trained_model
    user = "u5"
    before = _get(api_client, api_keys, user, explain="true")
    snap = rec.snapshot
    assert snap is not None
    new = f"new-{uuid.uuid4().hex[:8]}"
    category = driver.execute_query(
        "MATCH (c:Category)<-[:IN_CATEGORY]-(:Item) RETURN c.id AS id ORDER BY id LIMIT 1"
    ).records[0]["id"]
    driver.execute_query(
        "MATCH (c:Category {id: $c}) "
        "CREATE (:Item {id: $i, title: 'Brand new'})-[:IN_CATEGORY]->(c)",
        c=category,
        i=new,
    )
    vec = 100 * snap.users[snap.user_pos[user]]  # certain to rank first for the user
    try:
        # as the item refresh writes it: the active slot's vector, tagged with the version
        prop = active.property
        assert prop in ("embedding_a", "embedding_b")
        driver.execute_query(
            f"MATCH (i:Item {{id: $i}}) SET i.{prop} = $vec, i.{prop}_version = $v",
            i=new,
            vec=[float(x) for x in vec],
            v=trained_model,
        )
        driver.execute_query(
            "MATCH (m:Model {version: $v}) SET m.refreshed_at = $t",
            v=trained_model,
            t=int(time.time() * 1000),
        )
        set_at = time.monotonic()
        bound = 2 * rec.refresh_s + 10.0
        while (after := _get(api_client, api_keys, user))["items"][0]["item_id"] != new:
            assert time.monotonic() - set_at < bound, "the new item was not picked up"
            time.sleep(0.1)
        assert rec.snapshot is not None and rec.snapshot.version == trained_model
        assert rec.snapshot.users is snap.users  # the users were not read again
        rest = [i["item_id"] for i in after["items"][1:]]
        assert rest == [i["item_id"] for i in before["items"][:9]]
        similar = api_client.get(f"/v1/items/{new}/similar", headers=auth(api_keys["read"]))
        assert similar.status_code == 200 and similar.json()["items"], similar.text
    finally:
        driver.execute_query("MATCH (i:Item {id: $i}) DETACH DELETE i", i=new)
        driver.execute_query(
            "MATCH (m:Model {version: $v}) SET m.refreshed_at = $t",
            v=trained_model,
            t=int(time.time() * 1000) + 1,
        )
    deadline = time.monotonic() + 2 * rec.refresh_s + 30.0
    while new in {i["item_id"] for i in _get(api_client, api_keys, user)["items"]}:
        assert time.monotonic() < deadline, "the deleted item is still served"
        time.sleep(0.2)
