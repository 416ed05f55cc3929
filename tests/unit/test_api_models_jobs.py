"""``/v1/jobs``: pipeline runs read through the app's run registry (no worker code, no
services: the registry's Redis client is a stand-in holding two run records)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from graphstore import apikeys
from workers.runs import RUNS_KEY, RunRegistry, run_key

READ = {"X-API-Key": "dpgcn_r1_s"}


class RecordsOnly:
    """A Redis client that holds run records (hashes) and the runs' sorted set."""

    def __init__(self, records: dict[str, dict[str, str]]) -> None:
        self.records = records

    def hgetall(self, key: str) -> dict[str, str]:
        return dict(self.records.get(key, {}))

    def zrevrange(self, key: str, start: int, end: int) -> list[str]:
        assert key == RUNS_KEY
        ids = sorted((r["run_id"] for r in self.records.values()), reverse=True)
        return ids[start : end + 1]


def jobs_app(monkeypatch: pytest.MonkeyPatch, registry: RunRegistry | None) -> Any:
    from api.main import create_app
    from api.recommender import Recommender
    from api.security import KeyCache

    app = create_app()
    app.state.recommender = Recommender(None, snapshot=False)  # type: ignore[arg-type]
    app.state.driver = None
    app.state.redis = None
    app.state.runs = registry
    keys = KeyCache(None, "neo4j", 60.0)  # type: ignore[arg-type]
    keys.replace([apikeys.StoredKey("r1", apikeys.hash_secret("s"), "read", False)])
    app.state.keys = keys
    monkeypatch.setattr(apikeys, "get_all_keys", lambda *a, **k: [])
    return app


def registry_with_two_runs() -> RunRegistry:
    records = {
        run_key("v2"): {
            "run_id": "v2",
            "state": "RUNNING",
            "step": "train",
            "progress": json.dumps({"epoch": 3}),
            "train_started_at": "20.5",
            "attempt": "0",
        },
        run_key("v1"): {
            "run_id": "v1",
            "state": "SUCCESS",
            "step": "done",
            "metrics": json.dumps({"val_auc": 0.91}),
            "created_at": "10.0",
        },
    }
    return RunRegistry(RecordsOnly(records))  # type: ignore[arg-type]


def test_jobs_are_read_through_the_apps_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    client = TestClient(jobs_app(monkeypatch, registry_with_two_runs()))
    listed = client.get("/v1/jobs", headers=READ)
    assert listed.status_code == 200
    assert [j["run_id"] for j in listed.json()] == ["v2", "v1"]
    job = client.get("/v1/jobs/v2", headers=READ).json()
    assert job["state"] == "RUNNING" and job["progress"] == {"epoch": 3}
    assert job["timings"] == {"train_started_at": 20.5}
    assert client.get("/v1/jobs/v1", headers=READ).json()["metrics"] == {"val_auc": 0.91}
    unknown = client.get("/v1/jobs/v0-nope", headers=READ)
    assert unknown.status_code == 404 and "v0-nope" in unknown.json()["detail"]
    assert client.get("/v1/jobs", headers={}).status_code == 401


def test_jobs_without_redis_answer_503(monkeypatch: pytest.MonkeyPatch) -> None:
    client = TestClient(jobs_app(monkeypatch, None))
    for path in ("/v1/jobs", "/v1/jobs/v1"):
        r = client.get(path, headers=READ)
        assert r.status_code == 503 and "Redis" in r.json()["detail"], path


def test_the_api_builds_its_registry_from_the_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``_runs`` gives the registry its own decoding client for the configured Redis."""
    from api import main
    from dpgcn.settings import get_settings

    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/3")
    get_settings.cache_clear()
    try:
        registry = main._runs(get_settings())
    finally:
        get_settings.cache_clear()
    assert registry is not None
    kwargs = registry.client.connection_pool.connection_kwargs
    assert (kwargs["port"], kwargs["db"], kwargs["decode_responses"]) == (1, 3, True)
    registry.close()
