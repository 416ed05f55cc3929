"""Feedback events, privacy (erasure, consent), Neo4j restarts and a schemathesis run, against
the real Neo4j and Redis with a trained model."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from neo4j import Driver
from schemathesis.checks import not_a_server_error

from api.main import create_app
from dpgcn import neo4j_server, services
from dpgcn.settings import get_settings
from dpgcn.streams import FEEDBACK_FIELDS, FEEDBACK_STREAM
from graphstore import export
from tests.integration.api_keys import api_client_fixture, api_keys_fixture, auth  # noqa: F401
from workers.outbox import drain_outbox

pytestmark = pytest.mark.integration

Client = TestClient
Keys = dict[str, str]
NOW = time.time()


def _stream(user: str) -> list[dict[str, str]]:
    client = redis.Redis.from_url(services.redis_url(get_settings()), decode_responses=True)
    try:
        entries: list[tuple[str, dict[str, str]]] = client.xrange(FEEDBACK_STREAM)  # type: ignore[assignment]
        return [fields for _, fields in entries if fields.get("user_id") == user]
    finally:
        client.close()


def _rels(driver: Driver, user: str) -> dict[tuple[str, str], int]:
    return {
        (r["t"], r["target"]): r["c"]
        for r in driver.execute_query(
            "MATCH (:User {id: $u})-[r]->(n) RETURN type(r) AS t, n.id AS target, r.count AS c",
            u=user,
        ).records
    }


def _batch(user: str, item: str, prefix: str) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{prefix}-1",
            "user_id": user,
            "type": "search",
            "query": "Racing games",
            "ts": NOW,
        },
        {"id": f"{prefix}-2", "user_id": user, "type": "view", "item_id": item, "ts": NOW + 1},
        {
            "id": f"{prefix}-3",
            "user_id": user,
            "type": "click",
            "item_id": item,
            "query": "racing game",
            "ts": NOW + 2,
        },
        {"id": f"{prefix}-4", "user_id": user, "type": "purchase", "item_id": item, "ts": NOW + 3},
    ]


def test_events_are_written_once_and_streamed_with_the_documented_fields(
    driver: Driver, api_client: Client, api_keys: Keys
) -> None:
    user, prefix = f"ev-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    batch = {"events": _batch(user, "i5", prefix)}
    r = api_client.post("/v1/events", json=batch, headers=auth(api_keys["write"]))
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 4, "duplicates": 0, "rejected": [], "streamed": 4}
    rels = _rels(driver, user)
    assert rels == {
        ("SEARCHED", "game race"): 1,
        ("VIEWED", "i5"): 1,
        ("CLICKED", "i5"): 1,
        ("PURCHASED", "i5"): 1,
    }
    led_to = driver.execute_query(
        "MATCH (:Query {id: 'game race'})-[l:LED_TO]->(:Item {id: 'i5'}) RETURN l.count AS c"
    ).records[0]["c"]
    entries = _stream(user)
    assert [tuple(e) for e in entries] == [FEEDBACK_FIELDS] * 4
    assert entries[0] == {
        "event_id": f"{prefix}-1",
        "user_id": user,
        "type": "search",
        "item_id": "",
        "query": "game race",
        "ts": repr(NOW),
    }
    assert entries[2]["query"] == "game race" and entries[2]["item_id"] == "i5"
    # the retried batch changes nothing: no counts, no stream entries
    again = api_client.post("/v1/events", json=batch, headers=auth(api_keys["write"])).json()
    assert again == {"accepted": 0, "duplicates": 4, "rejected": [], "streamed": 0}
    assert _rels(driver, user) == rels and len(_stream(user)) == 4
    assert (
        driver.execute_query(
            "MATCH (:Query {id: 'game race'})-[l:LED_TO]->(:Item {id: 'i5'}) RETURN l.count AS c"
        ).records[0]["c"]
        == led_to
    )
    events = driver.execute_query(
        "MATCH (e:Event {user_id: $u}) RETURN count(e) AS c", u=user
    ).records[0]["c"]
    assert events == 4


def test_failed_stream_append_is_completed_by_the_retry(
    driver: Driver, api_client: Client, api_keys: Keys
) -> None:
    user, prefix = f"ev-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    batch = {"events": _batch(user, "i6", prefix)}
    state = api_client.app.state  # type: ignore[attr-defined]
    real = state.redis
    state.redis = redis.Redis(port=1, socket_connect_timeout=0.5)  # nothing listens there
    try:
        r = api_client.post("/v1/events", json=batch, headers=auth(api_keys["write"]))
    finally:
        state.redis = real
    # (the events outbox: stored and accepted; a worker or a retry streams them later)
    assert r.status_code == 200 and r.json()["accepted"] == 4 and r.json()["streamed"] == 0
    assert len(_rels(driver, user)) == 4 and _stream(user) == []
    retry = api_client.post("/v1/events", json=batch, headers=auth(api_keys["write"])).json()
    assert retry["accepted"] == 0 and retry["duplicates"] == 4 and retry["streamed"] == 4
    assert len(_stream(user)) == 4
    assert all(c == 1 for c in _rels(driver, user).values())


def test_events_rejections_and_validation(api_client: Client, api_keys: Keys) -> None:
    h = auth(api_keys["write"])
    user = f"ev-{uuid.uuid4().hex[:8]}"
    mixed = {
        "events": [
            {"id": f"{user}-a", "user_id": user, "type": "click", "item_id": "nope", "ts": NOW},
            {"id": f"{user}-b", "user_id": user, "type": "search", "query": "the of", "ts": NOW},
            {"id": f"{user}-c", "user_id": user, "type": "view", "item_id": "i1", "ts": NOW},
        ]
    }
    body = api_client.post("/v1/events", json=mixed, headers=h).json()
    assert body["accepted"] == 1
    assert {(r["id"], r["reason"]) for r in body["rejected"]} == {
        (f"{user}-a", "unknown item"),
        (f"{user}-b", "the query has no content words"),
    }
    ok = {"id": "x1", "user_id": "u1", "type": "view", "item_id": "i1", "ts": NOW}
    bad_cases = [
        ({"events": []}, "events"),
        ({"events": [{**ok, "type": "like"}]}, "type"),
        ({"events": [{**ok, "type": "search"}]}, "needs a query"),
        ({"events": [{**ok, "item_id": None}]}, "needs an item_id"),
        ({"events": [{**ok, "ts": NOW + 10 * 86400}]}, "future"),
        ({"events": [{**ok, "ts": 12.0}]}, "Unix seconds"),
        ({"events": [{**ok, "id": "has space"}]}, "id"),
        ({"events": [{**ok, "extra": 1}]}, "extra"),
        ({"events": [ok, ok]}, "appears twice"),
        ({"events": [{**ok, "id": f"x{n}"} for n in range(501)]}, "at most 500"),
    ]
    for payload, needle in bad_cases:
        r = api_client.post("/v1/events", json=payload, headers=h)
        assert r.status_code == 422, (needle, r.text)
        assert needle in r.text, (needle, r.text)
    assert (
        api_client.post("/v1/events", json=mixed, headers=auth(api_keys["read"])).status_code == 403
    )


def _exported_users(driver: Driver, tmp: Path) -> set[str]:
    export.export_subgraph(driver, tmp)
    with np.load(tmp / "graph.npz", allow_pickle=False) as z:
        return set(z["User.ids"].tolist())


def test_erase_removes_the_user_everywhere(
    driver: Driver, api_client: Client, api_keys: Keys, tmp_path: Path
) -> None:
    user = "u20"
    assert driver.execute_query("MATCH (u:User {id: $u}) RETURN u", u=user).records
    prefix = uuid.uuid4().hex
    api_client.post(
        "/v1/events", json={"events": _batch(user, "i7", prefix)}, headers=auth(api_keys["write"])
    )
    assert len(_stream(user)) >= 4
    before = api_client.get(
        f"/v1/users/{user}/recommendations", headers=auth(api_keys["read"])
    ).json()
    assert before["personalized"] is True
    r = api_client.delete(f"/v1/users/{user}", headers=auth(api_keys["write"]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["erased"] is True and body["events"] == 4 and body["stream_entries"] >= 4
    assert not driver.execute_query("MATCH (u:User {id: $u}) RETURN u", u=user).records
    assert not driver.execute_query("MATCH (e:Event {user_id: $u}) RETURN e", u=user).records
    assert _stream(user) == []
    after = api_client.get(
        f"/v1/users/{user}/recommendations", headers=auth(api_keys["read"])
    ).json()
    assert after["personalized"] is False and after["strategy"] == "popular"
    assert user not in _exported_users(driver, tmp_path / "export")
    again = api_client.delete(f"/v1/users/{user}", headers=auth(api_keys["write"]))
    assert again.status_code == 200 and again.json()["erased"] is False
    # the id stays erased: later events are rejected and re-create nothing
    late = api_client.post(
        "/v1/events",
        json={"events": _batch(user, "i7", uuid.uuid4().hex)},
        headers=auth(api_keys["write"]),
    ).json()
    assert late["accepted"] == 0 and late["streamed"] == 0
    assert {r["reason"] for r in late["rejected"]} == {"user erased"}
    assert not driver.execute_query("MATCH (u:User {id: $u}) RETURN u", u=user).records
    assert _stream(user) == []
    assert api_client.delete(f"/v1/users/{user}", headers=auth(api_keys["read"])).status_code == 403


def test_consent_off_means_non_personalized_and_not_exported(
    driver: Driver, api_client: Client, api_keys: Keys, tmp_path: Path
) -> None:
    user, h = "u21", auth(api_keys["read"])
    off = api_client.put(
        f"/v1/users/{user}/consent",
        json={"personalization": False},
        headers=auth(api_keys["write"]),
    )
    assert off.status_code == 200 and off.json() == {"user_id": user, "personalization": False}
    try:
        body = api_client.get(f"/v1/users/{user}/recommendations", headers=h).json()
        assert body["personalized"] is False and body["strategy"] == "popular"
        assert {i["explanation"]["kind"] for i in body["items"]} == {"popular"}
        queries = api_client.get(f"/v1/users/{user}/query-suggestions", headers=h).json()
        assert queries["personalized"] is False
        prefix = uuid.uuid4().hex
        events = api_client.post(
            "/v1/events",
            json={"events": _batch(user, "i8", prefix)},
            headers=auth(api_keys["write"]),
        ).json()
        mine = [e for e in _stream(user) if e["event_id"].startswith(prefix)]
        assert events["accepted"] == 4 and events["streamed"] == 0 and mine == []
        assert user not in _exported_users(driver, tmp_path / "export")
    finally:
        on = api_client.put(
            f"/v1/users/{user}/consent",
            json={"personalization": True},
            headers=auth(api_keys["write"]),
        )
    assert on.json()["personalization"] is True
    assert api_client.get(f"/v1/users/{user}/recommendations", headers=h).json()["personalized"]
    # the outbox never streams what was posted while consent was off, even once it is back
    client = redis.Redis.from_url(services.redis_url(get_settings()))
    try:
        drain_outbox(driver, client, grace_s=0.0)
    finally:
        client.close()
    assert [e for e in _stream(user) if e["event_id"].startswith(prefix)] == []
    bad = api_client.put(
        f"/v1/users/{user}/consent",
        json={"personalization": "maybe"},
        headers=auth(api_keys["write"]),
    )
    assert bad.status_code == 422


def test_neo4j_restart_gives_503_then_recovers_by_itself(
    driver: Driver, api_client: Client, api_keys: Keys
) -> None:
    spec = services.neo4j_spec(get_settings())
    h = auth(api_keys["read"])
    assert api_client.get("/v1/users/u1/recommendations", headers=h).status_code == 200
    statuses: list[int] = []
    stop = threading.Event()

    def load() -> None:  # a user the snapshot does not hold: answered from the graph
        while not stop.is_set():
            statuses.append(
                api_client.get("/v1/users/nobody-x/recommendations", headers=h).status_code
            )
            time.sleep(0.05)

    worker = threading.Thread(target=load)
    worker.start()
    try:
        assert neo4j_server.stop(spec)
        down = api_client.get("/v1/users/nobody-y/recommendations", headers=h)
        assert down.status_code == 503 and down.json() == {"detail": "graph database unavailable"}
        # a user the snapshot holds is answered from memory, explanations included
        kept = api_client.get("/v1/users/u1/recommendations", headers=h)
        assert kept.status_code == 200 and kept.json()["personalized"], kept.text
        assert down.headers["Retry-After"] == "5"
        assert api_client.get("/ready").status_code == 503
        assert api_client.get("/health").json()["status"] == "degraded"
        fresh = api_client.get("/v1/models", headers=auth(api_keys["admin"]))  # key not cached
        assert fresh.status_code == 503
    finally:
        neo4j_server.start(spec)
    deadline = time.monotonic() + 120
    while api_client.get("/v1/users/nobody-y/recommendations", headers=h).status_code != 200:
        assert time.monotonic() < deadline, "the API did not recover"
        time.sleep(0.5)
    time.sleep(1.0)
    stop.set()
    worker.join(30)
    assert set(statuses) <= {200, 503}, sorted(set(statuses))
    assert 503 in statuses and statuses[-1] == 200
    assert api_client.get("/ready").status_code == 200


# ------------------------------------------------------------------ schemathesis (last: it
# erases and changes random users)

schema = schemathesis.openapi.from_dict(create_app().openapi())


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_schemathesis_finds_no_server_errors(
    case: schemathesis.Case, api_client: Client, api_keys: Keys
) -> None:
    kwargs = case.as_transport_kwargs(headers=auth(api_keys["admin"]))
    response = api_client.request(
        kwargs["method"],
        kwargs["url"],
        headers=kwargs.get("headers"),
        params=kwargs.get("params"),
        json=kwargs.get("json"),
        content=kwargs.get("data") if isinstance(kwargs.get("data"), bytes | str) else None,
    )
    case.validate_response(response, checks=[not_a_server_error])
