"""The walking skeleton end to end: graph → export → train (real worker) → write-back →
activate → API answering from embeddings stored in Neo4j."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from neo4j import Driver

from graphstore import ingest, synthetic, writeback
from workers import pipeline, runs

pytestmark = pytest.mark.integration

SMALL = synthetic.SyntheticSpec(users=300, items=120, events_per_user=12, seed=3)
FAST = {"model": "dpgcn", "epochs": 2, "dim": 16}


def wait_for_run(run_id: str, timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = runs.get(run_id) or {}
        if record.get("state") in ("SUCCESS", "FAILURE"):
            return record
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} did not finish: {runs.get(run_id)}")


@pytest.fixture(scope="module")
def trained(driver: Driver, worker: Any) -> Iterator[str]:
    from graphstore.driver import delete_all

    delete_all(driver)
    source, _ = synthetic.generate(SMALL)
    ingest.load_source(driver, source)
    run_id = runs.new_run_id()
    pipeline.submit_pipeline(run_id, FAST)
    record = wait_for_run(run_id)
    assert record["state"] == "SUCCESS", record
    yield run_id


def test_pipeline_activates_a_version_with_embeddings(driver: Driver, trained: str) -> None:
    active = writeback.get_active(driver)
    assert active is not None and active.version == trained
    prop = active.property
    users = driver.execute_query(
        f"MATCH (u:User) WHERE u.{prop} IS NOT NULL AND u.{prop}_version = $v RETURN count(u) AS c",
        v=trained,
    ).records[0]["c"]
    items = driver.execute_query(
        f"MATCH (i:Item) WHERE i.{prop}_version = $v RETURN count(i) AS c, "
        f"min(size(i.{prop})) AS dim",
        v=trained,
    ).records[0]
    assert users == SMALL.users
    assert items["c"] == SMALL.items and items["dim"] == FAST["dim"]
    indexes = {
        r["name"]
        for r in driver.execute_query("SHOW VECTOR INDEXES YIELD name RETURN name").records
    }
    assert {f"user_embedding_{active.slot}", f"item_embedding_{active.slot}"} <= indexes
    record = runs.get(trained)
    assert record is not None and "val_auc" in (record.get("metrics") or {})


def test_api_recommends_from_neo4j_embeddings(driver: Driver, trained: str) -> None:
    from api.main import create_app

    with TestClient(create_app()) as client:
        health = client.get("/health").json()
        assert health["model_version"] == trained and health["status"] == "ok"
        body = client.get("/v1/users/u1/recommendations", params={"k": 10}).json()
    assert body["personalized"] is True and body["model_version"] == trained
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


def test_unknown_user_gets_non_personalized_answer(trained: str) -> None:
    from api.main import create_app

    with TestClient(create_app()) as client:
        response = client.get("/v1/users/nobody-here/recommendations", params={"k": 5})
    assert response.status_code == 200
    body = response.json()
    assert body["personalized"] is False and len(body["items"]) == 5


def test_rerunning_a_finished_run_is_a_noop(driver: Driver, trained: str, worker: Any) -> None:
    before = writeback.get_model(driver, trained)
    result = pipeline.pipeline_signature(trained, FAST).apply_async()
    assert result.get(timeout=300) == trained
    after = writeback.get_model(driver, trained)
    assert before is not None and after is not None
    assert after["completed_at"] == before["completed_at"]


def test_similar_items_use_the_active_version(driver: Driver, trained: str) -> None:
    from api.main import create_app

    with TestClient(create_app()) as client:
        body = client.get("/v1/items/i3/similar", params={"k": 5}).json()
        missing = client.get("/v1/items/no-such-item/similar")
    assert body["model_version"] == trained and len(body["items"]) == 5
    assert "i3" not in {i["item_id"] for i in body["items"]}
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    assert missing.status_code == 404


def test_models_and_jobs_endpoints(trained: str) -> None:
    from api.main import create_app

    with TestClient(create_app()) as client:
        models = client.get("/v1/models").json()
        job = client.get(f"/v1/jobs/{trained}").json()
        jobs = client.get("/v1/jobs").json()
        unknown = client.get("/v1/jobs/v0-nope")
        invalid = client.get("/v1/jobs/bad%20id")
    active = [m for m in models if m["active"]]
    assert [m["version"] for m in active] == [trained]
    assert active[0]["status"] == "complete" and "val_auc" in active[0]["metrics"]
    assert job["state"] == "SUCCESS" and job["step"] == "done"
    assert job["progress"]["epoch"] == FAST["epochs"]
    assert {"export_started_at", "train_finished_at", "activate_finished_at"} <= set(job["timings"])
    assert trained in {j["run_id"] for j in jobs}
    assert unknown.status_code == 404 and invalid.status_code == 422
