"""api/direct.py: the read routes answered without FastAPI's dependency solving give the
answers FastAPI gives for the same declaration — statuses, bodies and headers — valid or
not, with or without a key."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api import errors
from api.direct import DirectRoute
from api.guard import RequestGuard
from api.metrics import ObservabilityMiddleware
from api.routes import items, recommendations
from api.security import ReadKey

KEY = {"X-API-Key": "dpgcn_r1_s"}
LONG = "x" * 300

REQUESTS: list[tuple[str, dict[str, str]]] = [
    ("/v1/users/u3/recommendations", KEY),
    ("/v1/users/u3/recommendations?k=5&explain=false", KEY),
    ("/v1/users/u4/recommendations?k=3&k=7&extra=1", KEY),  # the last of a repeated parameter
    ("/v1/users/u4/recommendations?exclude_seen=0&explain=off", KEY),
    ("/v1/users/u5/recommendations?k=0", KEY),
    ("/v1/users/u5/recommendations?k=abc&explain=maybe&age=200&gender=", KEY),
    ("/v1/users/u5/recommendations?k=101", KEY),
    ("/v1/users/u5/recommendations?category=", KEY),
    (f"/v1/users/u5/recommendations?occupation={LONG}", KEY),
    ("/v1/users/bad id!/recommendations?k=0", KEY),  # path and query errors in one 422
    (f"/v1/users/{LONG}/recommendations", KEY),
    ("/v1/users/u5/recommendations?k=0", {}),  # the key is checked first
    ("/v1/users/u5/recommendations", {"X-API-Key": "dpgcn_r1_wrong"}),
    ("/v1/users/u5/recommendations", {"X-API-Key": "garbage"}),
    ("/v1/users/u5/recommendations", {"X-API-Key": ""}),
    ("/v1/users/u6/query-suggestions?k=3", KEY),
    ("/v1/users/u6/query-suggestions?prefix=Rac", KEY),
    ("/v1/users/u6/query-suggestions?k=51", KEY),
    (f"/v1/users/u6/query-suggestions?prefix={LONG}", KEY),
    ("/v1/items/i7/similar?k=4", KEY),
    ("/v1/items/i7/similar?k=-1", KEY),
    ("/v1/items/i7/similar", {}),
]


def _app(direct: bool, state: Any) -> FastAPI:
    app = FastAPI(redirect_slashes=False)
    errors.install(app)
    app.add_middleware(RequestGuard)
    app.add_middleware(ObservabilityMiddleware)
    for module in (recommendations, items):
        if direct:
            app.include_router(module.router)
            continue
        stock = APIRouter()
        for route in module.router.routes:
            assert isinstance(route, DirectRoute)
            stock.add_api_route(
                route.path,
                route.endpoint,
                methods=sorted(route.methods or ()),
                response_model=route.response_model,
                dependencies=route.dependencies,
                route_class_override=APIRoute,
            )
        app.include_router(stock)
    app.state.recommender = state.recommender
    app.state.keys = state.keys
    return app


def _answer(client: TestClient, url: str, headers: dict[str, str]) -> tuple[int, Any, Any]:
    got = client.get(url, headers=headers)
    kept = {k: v for k, v in got.headers.items() if k not in ("x-request-id", "date")}
    return got.status_code, got.content, kept


def test_direct_routes_answer_as_fastapi_does(monkeypatch: pytest.MonkeyPatch) -> None:
    from test_api_units import _stub_app

    app, rec = _stub_app(monkeypatch)
    try:
        direct = TestClient(_app(True, app.state))
        stock = TestClient(_app(False, app.state))
        statuses = set()
        for url, headers in REQUESTS:
            want = _answer(stock, url, headers)
            assert _answer(direct, url, headers) == want, url
            statuses.add(want[0])
        assert statuses == {200, 401, 422}
        two = direct.get("/v1/users/bad id!/recommendations?k=0", headers=KEY).json()["detail"]
        assert [e["loc"] for e in two] == [["path", "user_id"], ["query", "k"]]
    finally:
        rec.scorer.stop()


def test_a_route_it_cannot_answer_is_refused_when_built() -> None:
    async def needs_a_header(x_token: str | None = None, user: str = "") -> None:
        return None

    router = APIRouter(route_class=DirectRoute)
    with pytest.raises(TypeError, match="not a direct route"):
        router.add_api_route("/a/{user}", needs_a_header)  # no read key
    keyed = APIRouter(route_class=DirectRoute, dependencies=[ReadKey])

    def sync(user: str) -> None:
        return None

    with pytest.raises(TypeError, match="not a direct route"):
        keyed.add_api_route("/b/{user}", sync)
