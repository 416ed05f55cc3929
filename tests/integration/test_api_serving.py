"""The recommendation API against the real Neo4j and Redis with a trained model: every read
endpoint's happy path, the DDPG policy, explanations, cold start, rollback, auth, validation."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from neo4j import Driver

from graphstore import apikeys, policies, serving, writeback
from tests.integration.api_keys import api_client_fixture, api_keys_fixture, auth  # noqa: F401
from training.config import PolicyConfig
from training.policy import DDPGPolicy

pytestmark = pytest.mark.integration

Client = TestClient
Keys = dict[str, str]


def _seen(driver: Driver, user: str) -> set[str]:
    return {
        r["id"]
        for r in driver.execute_query(
            "MATCH (:User {id: $u})-[:VIEWED|CLICKED|PURCHASED|RATED]->(i) RETURN i.id AS id",
            u=user,
        ).records
    }


def _policy_blob(dim: int, seed: int, alpha: float = 1.0) -> bytes:
    policy = DDPGPolicy(2 * dim, dim, PolicyConfig(), seed=seed, alpha=alpha, scale=1.0)
    buf = io.BytesIO()
    torch.save(policy.state_dict(), buf)
    return buf.getvalue()


def _wait_for(client: Client, keys: Keys, user: str, predicate, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(
            f"/v1/users/{user}/recommendations", params={"k": 10}, headers=auth(keys["read"])
        ).json()
        if predicate(body) or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def test_recommendations_are_personalized_sorted_unseen_and_explained(
    driver: Driver, api_client: Client, api_keys: Keys, trained_model: str
) -> None:
    r = api_client.get(
        "/v1/users/u1/recommendations", params={"k": 7}, headers=auth(api_keys["read"])
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["personalized"] is True and body["model_version"] == trained_model
    assert body["strategy"] in ("policy", "embedding")
    assert len(body["items"]) == 7
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    assert not _seen(driver, "u1") & {i["item_id"] for i in body["items"]}
    kinds = {i["explanation"]["kind"] for i in body["items"]}
    assert kinds <= {"search", "search_term", "segment", "similar_item", "taste"}
    # with exclude_seen=false, seen items may come back and the top score can only rise (up
    # to float32 rounding: one answer may come from the Neo4j path, the other from the
    # snapshot's batched product, which sum in different orders)
    everything = api_client.get(
        "/v1/users/u1/recommendations",
        params={"k": 7, "exclude_seen": "false", "explain": "false"},
        headers=auth(api_keys["read"]),
    ).json()
    assert everything["items"][0]["score"] >= scores[0] - 1e-6 * max(1.0, abs(scores[0]))
    assert all(i["explanation"] is None for i in everything["items"])


def test_explanations_come_from_the_graph(
    driver: Driver, api_client: Client, api_keys: Keys
) -> None:
    """An item reached by a term of the user's own search is explained by that path."""
    found = 0
    for user in ("u2", "u3", "u4", "u5", "u6"):
        body = api_client.get(
            f"/v1/users/{user}/recommendations", params={"k": 20}, headers=auth(api_keys["read"])
        ).json()
        for item in body["items"]:
            e = item["explanation"]
            if e["kind"] == "search_term":
                query, term, item_id = e["via"]
                assert item_id == item["item_id"]
                rows = driver.execute_query(
                    "MATCH (:User {id: $u})-[:SEARCHED]->(q:Query)-[:HAS_TERM]->(t:Term {id: $t})"
                    "<-[:HAS_TERM]-(:Item {id: $i}) WHERE q.text = $q RETURN count(*) AS c",
                    u=user,
                    t=term,
                    i=item_id,
                    q=query,
                ).records
                assert rows[0]["c"] >= 1
                found += 1
            elif e["kind"] == "similar_item":
                similar = e["via"][0]
                assert similar in _seen(driver, user)
                found += 1
    assert found > 0


def test_category_filter(driver: Driver, api_client: Client, api_keys: Keys) -> None:
    leaf = driver.execute_query(
        "MATCH (c:Category)<-[:IN_CATEGORY]-(i:Item) WITH c, count(i) AS n "
        "ORDER BY n DESC LIMIT 1 RETURN c.id AS id"
    ).records[0]["id"]
    parent = driver.execute_query(
        "MATCH (:Category {id: $c})-[:SUBCATEGORY_OF]->(p) RETURN p.id AS id", c=leaf
    ).records
    for category in [leaf] + [p["id"] for p in parent]:
        members = {
            r["id"]
            for r in driver.execute_query(
                "MATCH (i:Item)-[:IN_CATEGORY]->(:Category)-[:SUBCATEGORY_OF*0..]->"
                "(:Category {id: $c}) RETURN i.id AS id",
                c=category,
            ).records
        }
        for user in ("u1", "nobody-at-all"):
            body = api_client.get(
                f"/v1/users/{user}/recommendations",
                params={"k": 5, "category": category},
                headers=auth(api_keys["read"]),
            ).json()
            assert body["items"] and {i["item_id"] for i in body["items"]} <= members
    missing = api_client.get(
        "/v1/users/u1/recommendations",
        params={"category": "no-such-category"},
        headers=auth(api_keys["read"]),
    )
    assert missing.status_code == 404


def test_policy_adjusts_and_new_versions_are_picked_up_without_restart(
    driver: Driver, api_client: Client, api_keys: Keys, trained_model: str
) -> None:
    active = writeback.get_active(driver)
    assert active is not None
    base_version = policies.get_latest_policy(driver, trained_model)
    start = 0 if base_version is None else base_version.version
    v1 = policies.save_policy(driver, trained_model, _policy_blob(active.dim, 1, 1.0), {})
    on = _wait_for(api_client, api_keys, "u7", lambda b: b.get("policy_version") == v1)
    assert on["strategy"] == "policy" and on["policy_version"] == v1 > start
    # alpha = 0 (validation switched the policy off): the answers say "embedding", no version
    v2 = policies.save_policy(driver, trained_model, _policy_blob(active.dim, 2, 0.0), {})
    off = _wait_for(api_client, api_keys, "u7", lambda b: b.get("strategy") == "embedding")
    assert off["policy_version"] is None and off["personalized"] is True and v2 > v1
    assert [i["score"] for i in on["items"]] != [i["score"] for i in off["items"]]
    v3 = policies.save_policy(driver, trained_model, _policy_blob(active.dim, 3, 1.0), {})
    _wait_for(api_client, api_keys, "u7", lambda b: b.get("policy_version") == v3)
    # a blob that is not a policy is ignored: plain embeddings, never an error
    v4 = policies.save_policy(driver, trained_model, b"not a policy file", {})
    bad = _wait_for(api_client, api_keys, "u7", lambda b: b.get("strategy") == "embedding")
    assert bad["strategy"] == "embedding" and bad["personalized"] is True and v4 > v3


def test_cold_start_by_static_features_and_fallbacks(
    driver: Driver, api_client: Client, api_keys: Keys
) -> None:
    # a user with static features and no embedding: the k nearest users' mean vector
    neighbour = driver.execute_query(
        "MATCH (u:User {id: 'u10'}) RETURN u.age AS age, u.gender AS g, u.occupation AS o"
    ).records[0]
    driver.execute_query(
        "MERGE (u:User {id: 'cold-1'}) SET u.age = $a, u.gender = $g, u.occupation = $o",
        a=neighbour["age"],
        g=neighbour["g"],
        o=neighbour["o"],
    )
    try:
        body = api_client.get(
            "/v1/users/cold-1/recommendations", params={"k": 5}, headers=auth(api_keys["read"])
        ).json()
        assert body["strategy"] == "cold_start_features" and body["personalized"] is False
        assert body["known_user"] is True  # (issue 20) stored, with features, no embedding
        assert len(body["items"]) == 5
        assert {i["explanation"]["kind"] for i in body["items"]} == {"similar_users"}
        # an unknown user giving features as parameters gets the same answer
        given = api_client.get(
            "/v1/users/cold-unknown/recommendations",
            params={
                "k": 5,
                "age": neighbour["age"],
                "gender": neighbour["g"],
                "occupation": neighbour["o"],
            },
            headers=auth(api_keys["read"]),
        ).json()
        assert given["strategy"] == "cold_start_features" and given["known_user"] is False
        assert [i["item_id"] for i in given["items"]] == [i["item_id"] for i in body["items"]]
    finally:
        driver.execute_query("MATCH (u:User {id: 'cold-1'}) DETACH DELETE u")
    # unknown user without features: popular, never a 500
    unknown = api_client.get(
        "/v1/users/never-seen/recommendations", params={"k": 4}, headers=auth(api_keys["read"])
    )
    assert unknown.status_code == 200
    body = unknown.json()
    assert body["personalized"] is False and body["strategy"] == "popular"
    assert body["known_user"] is False
    assert len(body["items"]) == 4
    for explain in ("true", "false"):  # the snapshot's answer and the graph's
        known = api_client.get(
            "/v1/users/u1/recommendations",
            params={"k": 4, "explain": explain},
            headers=auth(api_keys["read"]),
        ).json()
        assert known["known_user"] is True and known["personalized"] is True
    assert {i["explanation"]["kind"] for i in body["items"]} == {"popular"}
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)


def test_query_suggestions(driver: Driver, api_client: Client, api_keys: Keys) -> None:
    body = api_client.get(
        "/v1/users/u1/query-suggestions", params={"k": 5}, headers=auth(api_keys["read"])
    ).json()
    assert body["personalized"] is True and 0 < len(body["queries"]) <= 5
    scores = [q["score"] for q in body["queries"]]
    assert scores == sorted(scores, reverse=True)
    text = body["queries"][0]["text"]
    prefix = text[:2].upper()  # completion is case-insensitive
    completed = api_client.get(
        "/v1/users/u1/query-suggestions",
        params={"k": 5, "prefix": prefix},
        headers=auth(api_keys["read"]),
    ).json()
    assert completed["queries"] and all(
        q["text"].startswith(prefix.lower()) for q in completed["queries"]
    )
    assert text in {q["text"] for q in completed["queries"]} or len(completed["queries"]) == 5
    popular = api_client.get(
        "/v1/users/never-seen/query-suggestions",
        params={"k": 3, "prefix": prefix},
        headers=auth(api_keys["read"]),
    ).json()
    assert popular["personalized"] is False and popular["queries"]
    assert all(q["text"].startswith(prefix.lower()) for q in popular["queries"])
    none = api_client.get(
        "/v1/users/u1/query-suggestions",
        params={"prefix": "zzzzqqq"},
        headers=auth(api_keys["read"]),
    ).json()
    assert none["queries"] == []


def test_similar_items_and_suggestions_agree_with_the_vector_index(
    driver: Driver, api_client: Client, api_keys: Keys, trained_model: str
) -> None:
    """The API ranks similar items and query suggestions in memory (exact cosine); Neo4j's
    vector index (approximate, HNSW) answered before. Same scale of scores, same neighbours up
    to the index's misses: every neighbour both name has the same score, most are shared, and
    at each rank the exact answer is at least as similar. Prefix completion, exact on both
    sides (the Cypher statement scores every prefix match at this size), is the same list."""
    active = writeback.get_active(driver)
    assert active is not None and active.version == trained_model
    h = auth(api_keys["read"])

    def agree(api: list[tuple[str, float]], graph: list[tuple[str, float]], k: int) -> None:
        assert 0 < len(graph) <= len(api) <= k
        scores = dict(graph)
        shared = [(i, s) for i, s in api if i in scores]
        assert len(shared) >= 0.8 * len(graph), (api, graph)
        for i, s in shared:
            assert abs(s - scores[i]) < 1e-4, (i, s, scores[i])
        for (_, a), (_, g) in zip(api, graph, strict=False):
            assert a >= g - 1e-4

    items = [
        r["id"]
        for r in driver.execute_query(
            f"MATCH (i:Item) WHERE i.{active.property}_version = $v RETURN i.id AS id "
            "ORDER BY id LIMIT 8",
            v=trained_model,
        ).records
    ]
    assert len(items) == 8
    for item in items:
        body = api_client.get(f"/v1/items/{item}/similar", params={"k": 10}, headers=h).json()
        assert body["model_version"] == trained_model
        api = [(i["item_id"], i["score"]) for i in body["items"]]
        assert item not in {i for i, _ in api}
        graph = serving.get_similar_items(driver, item, 10, active)
        assert graph is not None
        agree(api, [(i, s) for i, _, s in graph], 10)
    for user in ("u1", "u2", "u3", "u4", "u5"):
        vector = serving.get_user_state(driver, user, active).vector
        assert vector is not None
        url = f"/v1/users/{user}/query-suggestions"
        body = api_client.get(url, params={"k": 10}, headers=h).json()
        assert body["personalized"] is True and body["model_version"] == trained_model
        api = [(q["query_id"], q["score"]) for q in body["queries"]]
        graph = serving.get_query_suggestions(driver, active, vector, 10, None)
        agree(api, [(q, s) for q, _, s in graph], 10)
        prefix = body["queries"][0]["text"][:2].lower()  # as the route normalizes it
        body = api_client.get(url, params={"k": 10, "prefix": prefix}, headers=h).json()
        exact = serving.get_query_suggestions(driver, active, vector, 10, prefix)
        assert [q["query_id"] for q in body["queries"]] == [q for q, _, _ in exact]
        np.testing.assert_allclose(
            [q["score"] for q in body["queries"]], [s for _, _, s in exact], atol=1e-4
        )


def test_similar_items_models_and_jobs(
    api_client: Client, api_keys: Keys, trained_model: str
) -> None:
    h = auth(api_keys["read"])
    similar = api_client.get("/v1/items/i3/similar", params={"k": 5}, headers=h).json()
    assert similar["model_version"] == trained_model and len(similar["items"]) == 5
    assert api_client.get("/v1/items/no-such-item/similar", headers=h).status_code == 404
    models = api_client.get("/v1/models", headers=h).json()
    assert [m["version"] for m in models if m["active"]] == [trained_model]
    job = api_client.get(f"/v1/jobs/{trained_model}", headers=h).json()
    assert job["state"] == "SUCCESS"
    assert trained_model in {j["run_id"] for j in api_client.get("/v1/jobs", headers=h).json()}


def test_activate_rolls_back_and_refuses_incomplete_versions(
    driver: Driver, api_client: Client, api_keys: Keys, trained_model: str
) -> None:
    active = writeback.get_active(driver)
    assert active is not None
    admin = auth(api_keys["admin"])
    # a second, complete version with random vectors in the other slot
    users = [r["id"] for r in driver.execute_query("MATCH (u:User) RETURN u.id AS id").records]
    items = [r["id"] for r in driver.execute_query("MATCH (i:Item) RETURN i.id AS id").records]
    rng = np.random.default_rng(0)
    other = f"{trained_model}-rollback"
    writeback.begin_version(driver, other, active.dim, "random")
    writeback.write_embeddings(
        driver, other, "User", users, rng.normal(size=(len(users), active.dim))
    )
    writeback.write_embeddings(
        driver, other, "Item", items, rng.normal(size=(len(items), active.dim))
    )
    writeback.complete_version(driver, other, {"User": len(users)}, {})
    try:
        r = api_client.post(f"/v1/models/{other}/activate", headers=admin)
        assert r.status_code == 200 and r.json()["active"] is True
        body = _wait_for(api_client, api_keys, "u1", lambda b: b["model_version"] == other)
        assert body["model_version"] == other
    finally:
        back = api_client.post(f"/v1/models/{trained_model}/activate", headers=admin)
    assert back.status_code == 200 and back.json()["version"] == trained_model
    body = _wait_for(api_client, api_keys, "u1", lambda b: b["model_version"] == trained_model)
    assert body["model_version"] == trained_model
    assert api_client.post("/v1/models/v-unknown/activate", headers=admin).status_code == 404
    writing = f"{trained_model}-writing"
    driver.execute_query(
        "CREATE (:Model {version: $v, status: 'writing', slot: 'a', dim: 4})", v=writing
    )
    try:
        conflict = api_client.post(f"/v1/models/{writing}/activate", headers=admin)
        assert conflict.status_code == 409 and "writing" in conflict.json()["detail"]
    finally:
        driver.execute_query("MATCH (m:Model {version: $v}) DELETE m", v=writing)
    assert writeback.get_active(driver).version == trained_model  # type: ignore[union-attr]


def _protected_routes(client: Client) -> list[tuple[str, str, str]]:
    """(method, concrete path, needed scope) of every /v1 operation in the OpenAPI spec."""
    scope_of = {"get": "read", "post": "write", "put": "write", "delete": "write"}
    out = []
    for template, operations in client.get("/openapi.json").json()["paths"].items():
        if not template.startswith("/v1"):
            continue
        path = (
            template.replace("{user_id}", "u1")
            .replace("{item_id}", "i1")
            .replace("{run_id}", "v1")
            .replace("{version}", "v-nope")
        )
        for method in operations:
            scope = "admin" if path.endswith("/activate") else scope_of[method]
            out.append((method.upper(), path, scope))
    return out


def test_every_protected_route_needs_a_key_with_enough_scope(
    driver: Driver, api_client: Client, api_keys: Keys
) -> None:
    routes = _protected_routes(api_client)
    assert len(routes) >= 9
    key_id, revoked = apikeys.create_key(driver, "admin")
    apikeys.revoke_key(driver, key_id)
    forged = "dpgcn_" + api_keys["admin"].split("_")[1] + "_" + "0" * 64
    for method, path, scope in routes:
        for headers in ({}, auth("garbage"), auth(forged), auth(revoked)):
            r = api_client.request(method, path, headers=headers)
            assert r.status_code == 401, (method, path, headers, r.text)
        too_small = {"read": None, "write": "read", "admin": "write"}[scope]
        if too_small:
            r = api_client.request(method, path, headers=auth(api_keys[too_small]))
            assert r.status_code == 403, (method, path, r.text)
    for open_path in ("/health", "/ready", "/metrics", "/openapi.json", "/docs"):
        assert api_client.get(open_path).status_code == 200, open_path


def test_validation_errors_are_clear_422s(api_client: Client, api_keys: Keys) -> None:
    h = auth(api_keys["read"])
    cases = [
        ("/v1/users/u1/recommendations", {"k": 0}, "k"),
        ("/v1/users/u1/recommendations", {"k": 101}, "k"),
        ("/v1/users/u1/recommendations", {"k": "ten"}, "k"),
        ("/v1/users/u1/recommendations", {"age": 500}, "age"),
        ("/v1/users/u1/query-suggestions", {"k": 51}, "k"),
        ("/v1/users/u1/query-suggestions", {"prefix": "x" * 101}, "prefix"),
        ("/v1/items/i1/similar", {"k": 1000}, "k"),
        ("/v1/jobs/bad%20id", {}, "run_id"),
    ]
    for path, params, field in cases:
        r = api_client.get(path, params=params, headers=h)
        assert r.status_code == 422, (path, params, r.text)
        assert field in {str(p) for e in r.json()["detail"] for p in e["loc"]}, r.text
    assert (
        api_client.get("/v1/users/" + "x" * 129 + "/recommendations", headers=h).status_code == 422
    )


def test_metrics_and_readiness(api_client: Client, api_keys: Keys) -> None:
    api_client.get("/v1/users/u1/recommendations", headers=auth(api_keys["read"]))
    ready = api_client.get("/ready").json()
    assert ready["ready"] is True and ready["model"]["ok"] is True
    text = api_client.get("/metrics").text
    assert (
        'dpgcn_api_request_seconds_bucket{le="0.05",method="GET",route="/v1/users/{user_id}/recommendations"}'
        in text
    )
    assert 'dpgcn_api_cache_total{cache="api_key",result="hit"}' in text
    assert "u1" not in text


def test_segment_explanations_and_segment_fallback(
    driver: Driver, api_client: Client, api_keys: Keys, trained_model: str
) -> None:
    from graphstore import serving

    item = driver.execute_query(
        "MATCH (i:Item)<-[:PURCHASED]-(u:User) WITH i, count(u) AS n ORDER BY n DESC, i.id "
        "LIMIT 1 RETURN i.id AS id, n"
    ).records[0]
    seg = f"{trained_model}:api-test"
    driver.execute_query(
        "CREATE (s:Segment {id: $s, model_version: $v, name: 'Racing fans'}) "
        "CREATE (:User {id: 'seg-x'})-[:IN_SEGMENT]->(s) "
        "WITH s MATCH (:Item {id: $i})<-[:PURCHASED]-(b:User) CREATE (b)-[:IN_SEGMENT]->(s)",
        s=seg,
        v=trained_model,
        i=item["id"],
    )
    try:
        found = serving.get_explanations(driver, "seg-x", [item["id"]], trained_model)
        e = found[item["id"]]
        assert e.segment == "Racing fans" and e.segment_buyers == item["n"]
        other_version = serving.get_explanations(driver, "seg-x", [item["id"]], "v-other")
        assert other_version[item["id"]].segment_buyers == 0
        # no embedding, no static features, but a segment: the segment's popular items
        body = api_client.get(
            "/v1/users/seg-x/recommendations", params={"k": 3}, headers=auth(api_keys["read"])
        ).json()
        assert body["strategy"] == "segment" and body["personalized"] is False
        expected = serving.get_segment_popular_items(driver, seg, 3)
        assert [i["item_id"] for i in body["items"]] == [i for i, _, _ in expected]
        for answer in body["items"]:
            assert answer["explanation"]["kind"] in ("segment", "popular")
            if answer["item_id"] == item["id"]:
                text = answer["explanation"]["text"]
                assert text == f"{item['n']} users in your segment (Racing fans) bought it"
    finally:
        driver.execute_query(
            "MATCH (s:Segment {id: $s}) DETACH DELETE s WITH 1 AS x "
            "MATCH (u:User {id: 'seg-x'}) DETACH DELETE u",
            s=seg,
        )
