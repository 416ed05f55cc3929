"""Request bodies (issue 18): no body is read before the key is known, size limits are
checked before reading (Content-Length) and while a chunked body streams, errors never echo
the input, non-finite numbers are 422s, and logged tracebacks carry no request data."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.unit.test_api_ids import WRITE, stub_app

MB = 1 << 20


def _call(
    app: Any, path: str, headers: list[tuple[bytes, bytes]], chunks: int, chunk: int = 64 << 10
) -> tuple[int, bytes, int]:
    """POST ``chunks`` chunks of ``chunk`` bytes to ``path`` through the ASGI app; returns
    status, body and how many bytes the app read."""
    read = 0
    sent = 0
    out: dict[str, Any] = {"body": b""}

    async def receive() -> dict[str, Any]:
        nonlocal read, sent
        if sent >= chunks:
            return {"type": "http.disconnect"}
        sent += 1
        read += chunk
        return {"type": "http.request", "body": b"x" * chunk, "more_body": sent < chunks}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "headers": [(b"host", b"x"), (b"content-type", b"application/json"), *headers],
    }
    asyncio.run(app(scope, receive, send))
    return out["status"], out["body"], read


def test_no_body_is_read_without_a_valid_key(monkeypatch: pytest.MonkeyPatch) -> None:
    app, _ = stub_app(monkeypatch)
    big = [(b"content-length", str(200 * MB).encode())]
    for headers in (big, [*big, (b"x-api-key", b"dpgcn_w1_bad")], [*big, (b"x-api-key", b"x")]):
        status, body, read = _call(app, "/v1/events", headers, chunks=3200)
        assert status == 401 and read == 0, (headers, status, read)
        assert len(body) < 200
    chunked = [(b"transfer-encoding", b"chunked")]
    status, _, read = _call(app, "/v1/users/erase", chunked, chunks=3200)
    assert status == 401 and read == 0


def test_bodies_over_the_limit_are_413_before_or_while_reading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, _ = stub_app(monkeypatch)
    key = (b"x-api-key", WRITE["X-API-Key"].encode())
    declared = [(b"content-length", str(200 * MB).encode()), key]
    status, body, read = _call(app, "/v1/events", declared, chunks=3200)
    assert status == 413 and read == 0 and len(body) < 200
    # chunked: counted while it streams, stopped just past the limit
    chunked = [(b"transfer-encoding", b"chunked"), key]
    status, body, read = _call(app, "/v1/events", chunked, chunks=3200)
    assert status == 413 and MB < read <= MB + (64 << 10), read
    assert json.loads(body) == {"detail": "Content Too Large"}


def test_per_route_limits_come_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from dpgcn.settings import get_settings

    monkeypatch.setenv("DPGCN_API_BODY_LIMITS", json.dumps({"/v1/users/erase": 100}))
    monkeypatch.setenv("DPGCN_API_MAX_BODY_BYTES", str(2 * MB))
    get_settings.cache_clear()
    try:
        app, recorded = stub_app(monkeypatch)
        client = TestClient(app)
        r = client.post("/v1/users/erase", json={"user_id": "u" * 120}, headers=WRITE)
        assert r.status_code == 413
        r = client.post("/v1/users/erase", json={"user_id": "u1"}, headers=WRITE)
        assert r.status_code == 200 and recorded.erased == ["u1"]
        # the app's limit (2 MB) for the other routes: 1.5 MB is read, and refused as 422
        body = b'{"personalization": "' + b"x" * (3 * MB // 2) + b'"}'
        r = client.put("/v1/users/u1/consent", content=body, headers=WRITE)
        assert r.status_code == 422 and len(r.content) < 1000
        monkeypatch.setenv("DPGCN_API_BODY_LIMITS", json.dumps({"/v1/nowhere": 1}))
        get_settings.cache_clear()
        with pytest.raises(ValueError, match="unknown routes: /v1/nowhere"):
            stub_app(monkeypatch)
    finally:
        get_settings.cache_clear()


def test_non_finite_numbers_are_422_and_errors_never_echo_the_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, _ = stub_app(monkeypatch)
    app.state.redis = object()  # (never used: the body is refused first)
    client = TestClient(app)
    h = {**WRITE, "content-type": "application/json"}
    for ts in ("NaN", "Infinity", "-Infinity"):
        body = '{"events": [{"id": "e1", "user_id": "u1", "type": "view", "item_id": "i1", '
        r = client.post("/v1/events", content=body + f'"ts": {ts}}}]}}', headers=h)
        assert r.status_code == 422, (ts, r.status_code, r.text)
        (error,) = r.json()["detail"]
        assert error["loc"] == ["body", "events", 0, "ts"] and "finite" in error["msg"]
    r = client.put("/v1/users/u1/consent", content='{"personalization": NaN}', headers=h)
    assert r.status_code == 422
    # a long string and many bad events: a short answer
    events = [
        {"id": f"e{n}", "user_id": "u/" + "x" * 5000, "type": "view", "item_id": "i", "ts": 1.0}
        for n in range(100)
    ]
    r = client.post("/v1/events", json={"events": events}, headers=WRITE)
    assert r.status_code == 422 and len(r.content) < 10_000, len(r.content)
    assert "x" * 100 not in r.text and r.json()["detail"][-1]["type"] == "more"
    # a bad path id: the id rule in words
    r = client.delete("/v1/users/a%20b", headers=WRITE)
    assert r.status_code == 422 and "' ' is not allowed" in r.json()["detail"][0]["msg"]


def test_logged_tracebacks_hold_no_request_data(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from api.routes import users

    app, _ = stub_app(monkeypatch)

    def broken(driver: object, user_id: str, database: str = "neo4j") -> None:
        raise RuntimeError(f"could not erase {user_id}")

    monkeypatch.setattr(users.users, "delete_user", broken)
    client = TestClient(app, raise_server_exceptions=False)
    with caplog.at_level(logging.DEBUG):
        r = client.delete("/v1/users/u-secret-7", headers=WRITE)
        r2 = client.post("/v1/users/erase", json={"user_id": "u-secret-8"}, headers=WRITE)
    assert r.status_code == r2.status_code == 500
    server = [r for r in caplog.records if not r.name.startswith("httpx")]  # (the client's)
    logged = "\n".join(
        r.getMessage() + (logging.Formatter().formatException(r.exc_info) if r.exc_info else "")
        for r in server
    )
    assert logged.count("RuntimeError (message hidden)") == 2, logged
    assert "in broken" in logged  # the frames are kept
    assert "u-secret" not in logged, logged
