"""The id rule (graphstore/ids.py) and literal id routing: a request reaches only the id it
names (no slash redirects, no encoded '/'), and ids outside the rule are erased by body."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from graphstore import apikeys
from graphstore.ids import (
    ID_PATTERN,
    MAX_ID_LENGTH,
    InvalidIdError,
    is_valid_id,
    validate_id,
)


def test_the_id_rule() -> None:
    for good in ("u7", "7", "i.42", "A-b_c:d.e", "x" * MAX_ID_LENGTH):
        assert is_valid_id(good) and validate_id(good, "user_id") == good
    for bad, why in [
        ("", "empty"),
        ("u11/", "'/' is not allowed"),
        (".", "start with"),
        ("..", "start with"),
        ("-rf", "start with"),
        ("%2F", "start with"),
        ("u%2F", "'%' is not allowed"),
        ("u 1", "' ' is not allowed"),
        ("ü", "start with"),
        ("uü", "'ü' is not allowed"),
        ("u\n", "'\\n' is not allowed"),
        ("x" * (MAX_ID_LENGTH + 1), "at most 128"),
    ]:
        assert not is_valid_id(bad)
        with pytest.raises(InvalidIdError, match=re.escape(why)) as e:
            validate_id(bad, "user_id")
        assert str(e.value).startswith("user_id ")
        assert isinstance(e.value, ValueError)
        assert len(str(e.value)) < 200  # a long id is never echoed whole
    with pytest.raises(InvalidIdError, match="must be a string"):
        validate_id(7, "item_id")
    assert not is_valid_id(None)
    assert ID_PATTERN.startswith("^") and ID_PATTERN.endswith("$")


class _Users:
    """Stands in for graphstore.users: records which ids were erased."""

    def __init__(self) -> None:
        self.erased: list[str] = []

    def delete_user(self, driver: object, user_id: str, database: str = "neo4j") -> Any:
        from graphstore.users import Erasure

        self.erased.append(user_id)
        return Erasure(users=1, events=0, queries=0)


def stub_app(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, _Users]:
    """The real app, no services: a write key ``dpgcn_w1_s`` in the key table, the graph's
    user erasure recorded."""
    from api.main import create_app
    from api.recommender import Recommender
    from api.routes import users
    from api.security import KeyCache

    app = create_app()
    app.state.recommender = Recommender(None, snapshot=False)  # type: ignore[arg-type]
    app.state.driver = None
    app.state.redis = None
    keys = KeyCache(None, "neo4j", 60.0)  # type: ignore[arg-type]
    keys.replace([apikeys.StoredKey("w1", apikeys.hash_secret("s"), "write", False)])
    app.state.keys = keys
    monkeypatch.setattr(apikeys, "get_all_keys", lambda *a, **k: [])
    recorded = _Users()
    monkeypatch.setattr(users.users, "delete_user", recorded.delete_user)
    return app, recorded


WRITE = {"X-API-Key": "dpgcn_w1_s"}


def test_a_delete_reaches_only_the_id_it_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """The erasure bug: ``DELETE /v1/users/u11%2F`` was decoded to ``/v1/users/u11/`` and
    redirected (307) to ``/v1/users/u11``; a client that follows redirects erased u11."""
    app, recorded = stub_app(monkeypatch)
    client = TestClient(app, follow_redirects=True)
    for path in (
        "/v1/users/u11%2F",
        "/v1/users/u11%2f",
        "/v1/users/u11/",
        "/v1/users/u11%2F%2E%2E",
        "/v1/users/u11%2F.",  # (unescaped, 'u11/.' is rewritten by the client itself)
        "/v1/users/%2E",
        "/v1/users/%2E%2E",
        "/v1/users/u11%20",
        "/v1/users/" + "x" * 129,
    ):
        r = client.delete(path, headers=WRITE)
        assert r.status_code in (404, 422), (path, r.status_code)
        assert not r.history, (path, [h.status_code for h in r.history])  # no redirect
        assert len(r.content) < 1000
    assert recorded.erased == []
    r = client.delete("/v1/users/u11", headers=WRITE)
    assert r.status_code == 200 and recorded.erased == ["u11"]
    # no 3xx anywhere under /v1
    for method, path in [("POST", "/v1/events/"), ("GET", "/v1/models/"), ("GET", "/v1/jobs/")]:
        r = client.request(method, path, headers=WRITE)
        assert not r.history and r.status_code == 404, (method, path, r.status_code)


def test_ids_outside_the_rule_are_erased_by_body(monkeypatch: pytest.MonkeyPatch) -> None:
    app, recorded = stub_app(monkeypatch)
    client = TestClient(app)
    for stored in ("u11/", ".", "..", "a b", "ü/..", "x" * 300):
        r = client.post("/v1/users/erase", json={"user_id": stored}, headers=WRITE)
        assert r.status_code == 200, r.text
        assert r.json()["user_id"] == stored and r.json()["erased"] is True
    assert recorded.erased == ["u11/", ".", "..", "a b", "ü/..", "x" * 300]
    assert client.post("/v1/users/erase", json={"user_id": ""}, headers=WRITE).status_code == 422
    assert client.post("/v1/users/erase", json={"user_id": "u1"}).status_code == 401


def test_events_and_paths_follow_the_id_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    from api.schemas import EventIn

    now = time.time()
    for field in ("id", "user_id", "item_id"):
        event = {"id": "e1", "user_id": "u1", "type": "view", "item_id": "i1", "ts": now}
        with pytest.raises(ValueError, match=f"{field} 'u11/' is not a valid id"):
            EventIn.model_validate({**event, field: "u11/"})
    app, _ = stub_app(monkeypatch)
    client = TestClient(app)
    r = client.put("/v1/users/a%20b/consent", json={"personalization": False}, headers=WRITE)
    assert r.status_code == 422
    schema = app.openapi()
    params = schema["paths"]["/v1/users/{user_id}"]["delete"]["parameters"]
    assert params[0]["schema"]["pattern"] == ID_PATTERN
