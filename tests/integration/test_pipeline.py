"""The walking skeleton end to end: graph → export → train (real worker) → write-back →
activate → API answering from embeddings stored in Neo4j."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from neo4j import Driver

from graphstore import writeback
from tests.integration.api_keys import api_keys_fixture, auth  # noqa: F401
from tests.integration.helpers import FAST, SMALL
from workers import pipeline, runs

pytestmark = pytest.mark.integration


def test_pipeline_activates_a_version_with_embeddings(driver: Driver, trained_model: str) -> None:
    active = writeback.get_active(driver)
    assert active is not None and active.version == trained_model
    prop = active.property
    users = driver.execute_query(
        f"MATCH (u:User) WHERE u.{prop} IS NOT NULL AND u.{prop}_version = $v RETURN count(u) AS c",
        v=trained_model,
    ).records[0]["c"]
    items = driver.execute_query(
        f"MATCH (i:Item) WHERE i.{prop}_version = $v RETURN count(i) AS c, "
        f"min(size(i.{prop})) AS dim",
        v=trained_model,
    ).records[0]
    assert users == SMALL.users
    assert items["c"] == SMALL.items and items["dim"] == FAST["model.dim"]
    indexes = {
        r["name"]
        for r in driver.execute_query("SHOW VECTOR INDEXES YIELD name RETURN name").records
    }
    assert {f"user_embedding_{active.slot}", f"item_embedding_{active.slot}"} <= indexes
    record = runs.get(trained_model)
    assert record is not None and "val_auc" in (record.get("metrics") or {})


def test_api_recommends_from_neo4j_embeddings(
    driver: Driver, trained_model: str, api_keys: dict[str, str]
) -> None:
    from api.main import create_app

    with TestClient(create_app()) as client:
        health = client.get("/health").json()
        assert health["model_version"] == trained_model and health["status"] == "ok"
        body = client.get(
            "/v1/users/u1/recommendations", params={"k": 10}, headers=auth(api_keys["read"])
        ).json()
    assert body["personalized"] is True and body["model_version"] == trained_model
    assert len(body["items"]) == 10
    scores = [item["score"] for item in body["items"]]
    assert scores == sorted(scores, reverse=True)
    seen = {
        r["id"]
        for r in driver.execute_query(
            "MATCH (:User {id: 'u1'})-[:VIEWED|CLICKED|PURCHASED|RATED]->(i) RETURN i.id AS id"
        ).records
    }
    assert seen and not seen & {item["item_id"] for item in body["items"]}


def test_unknown_user_gets_non_personalized_answer(
    trained_model: str, api_keys: dict[str, str]
) -> None:
    from api.main import create_app

    with TestClient(create_app()) as client:
        response = client.get(
            "/v1/users/nobody-here/recommendations",
            params={"k": 5},
            headers=auth(api_keys["read"]),
        )
    assert response.status_code == 200
    body = response.json()
    assert body["personalized"] is False and len(body["items"]) == 5


def test_rerunning_a_finished_run_is_a_noop(
    driver: Driver, trained_model: str, worker: Any
) -> None:
    before = writeback.get_model(driver, trained_model)
    result = pipeline.pipeline_signature(trained_model, FAST).apply_async()
    assert result.get(timeout=300) == trained_model
    after = writeback.get_model(driver, trained_model)
    assert before is not None and after is not None
    assert after["completed_at"] == before["completed_at"]


def test_similar_items_use_the_active_version(
    driver: Driver, trained_model: str, api_keys: dict[str, str]
) -> None:
    from api.main import create_app

    with TestClient(create_app()) as client:
        key = auth(api_keys["read"])
        body = client.get("/v1/items/i3/similar", params={"k": 5}, headers=key).json()
        missing = client.get("/v1/items/no-such-item/similar", headers=key)
    assert body["model_version"] == trained_model and len(body["items"]) == 5
    assert "i3" not in {i["item_id"] for i in body["items"]}
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    assert missing.status_code == 404


def test_models_and_jobs_endpoints(trained_model: str, api_keys: dict[str, str]) -> None:
    from api.main import create_app

    with TestClient(create_app()) as client:
        key = auth(api_keys["read"])
        models = client.get("/v1/models", headers=key).json()
        job = client.get(f"/v1/jobs/{trained_model}", headers=key).json()
        jobs = client.get("/v1/jobs", headers=key).json()
        unknown = client.get("/v1/jobs/v0-nope", headers=key)
        invalid = client.get("/v1/jobs/bad%20id", headers=key)
    active = [m for m in models if m["active"]]
    assert [m["version"] for m in active] == [trained_model]
    assert active[0]["status"] == "complete" and "val_auc" in active[0]["metrics"]
    assert job["state"] == "SUCCESS" and job["step"] == "done"
    assert job["progress"]["epoch"] == FAST["optim.epochs"]
    assert {"export_started_at", "train_finished_at", "activate_finished_at"} <= set(job["timings"])
    assert trained_model in {j["run_id"] for j in jobs}
    assert unknown.status_code == 404 and invalid.status_code == 422
